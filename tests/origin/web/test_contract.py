"""The origin's /openapi.json is its contract: schemathesis checks a running origin against it.

A real origin (uvicorn, on the suite's redis-server with a seeded catalog and an editor token)
is checked by the schemathesis CLI with every check (server errors, undocumented statuses,
schema-valid requests rejected, schema-violating requests accepted, headers, Allow, auth...) and
every phase, stateful included. The exceptions it is told about are in the repository's
``schemathesis.toml``, each with its reason. CI runs a bounded number of examples per operation
(`SHELFEDGE_CONTRACT_EXAMPLES`, default 10, a fixed seed); the longer run is in
docs/testing-contract-and-fuzzing.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.origin.experiments.support import EDITOR_TOKEN, origin_settings, seeded
from tests.support.origin_server import OriginServer

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = int(os.environ.get("SHELFEDGE_CONTRACT_EXAMPLES", "10"))
SEED = os.environ.get("SHELFEDGE_CONTRACT_SEED", "1")

__all__ = ["seeded"]


EDGE_CONFIG_TOKEN = "contract-edge-config-token"


@pytest.fixture
def contract_origin(redis_url: str, seeded: Redis) -> Iterator[OriginServer]:
    # An edge token is configured, as in production: without one a dev origin serves
    # /v1/edge-config and /v1/preview/exchange to anyone, which the document (rightly) does
    # not promise, and the negative-auth checks would find them open.
    settings = origin_settings(redis_url, edge_config_token=EDGE_CONFIG_TOKEN)
    with OriginServer.for_origin(settings) as server:
        yield server


def _schemathesis() -> str:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert found, "schemathesis is a dev dependency: run `uv sync` (it is missing from the venv)"
    return found


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_running_origin_honours_its_openapi_document(
    contract_origin: OriginServer, tmp_path: Path
) -> None:
    url = contract_origin.url
    command = [
        _schemathesis(),
        "--config-file", str(ROOT / "schemathesis.toml"),
        "run", f"{url}/openapi.json",
        "--url", url,
        "-H", f"Authorization: Bearer {EDITOR_TOKEN}",
        "--checks", "all",
        "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", str(EXAMPLES),
        "--seed", SEED,
        "--generation-database", "none",
        "--no-color",
        "--report", "junit", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    run = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=220, check=False
    )

    failures = run.stdout.find("FAILURES")
    summary = run.stdout[max(failures, 0) :][:12000] + "\n...\n" + run.stdout[-1500:]
    assert run.returncode == 0, f"schemathesis found contract failures:\n{summary}\n{run.stderr}"
    assert "passed" in summary, summary
    assert "Stateful" in summary, f"the stateful phase did not run:\n{summary}"
    assert "❌" not in summary, summary
