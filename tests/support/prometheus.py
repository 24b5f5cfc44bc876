"""A real Prometheus server (Debian's `prometheus`) on a loopback port, for the deploy tests.

`PrometheusServer` writes its configuration (scrape jobs, rule files, a 1 s scrape and rule
evaluation interval) into its own temp dir, keeps its TSDB there, and is ready when
``/-/ready`` answers 200. `query` runs an instant query through ``/api/v1/query`` (a PromQL
parse error comes back as `PrometheusQueryError`), `alerts` reads ``/api/v1/alerts``.

Test support: it scrapes only loopback targets the test names, and never writes outside its
work dir.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from shelfedge.localstack.errors import ServiceBinaryNotFound
from shelfedge.localstack.service import LocalService, ProbeFailed

PROMETHEUS_NOT_FOUND = (
    "prometheus not found on PATH: install it with 'apt-get install -y prometheus' (Debian)"
)


class PrometheusQueryError(RuntimeError):
    """Prometheus refused a query (``status: error``); the message carries its error text."""


@dataclass(frozen=True, slots=True)
class Alert:
    """One entry of ``/api/v1/alerts``: an alert that is pending or firing."""

    name: str
    state: str
    """``pending`` or ``firing``."""
    labels: Mapping[str, str]


class PrometheusServer(LocalService):
    """Prometheus scraping `targets` and evaluating `rule_files`, in a temp dir of its own."""

    display_name = "prometheus"

    def __init__(
        self,
        targets: Mapping[str, tuple[str, str]],
        rule_files: Sequence[Path] = (),
        *,
        interval_s: int = 1,
        startup_timeout: float = 20.0,
    ) -> None:
        """`targets` maps a job name to (``host:port``, metrics path)."""
        found = shutil.which("prometheus")
        if found is None:
            raise ServiceBinaryNotFound(PROMETHEUS_NOT_FOUND)
        self._targets = dict(targets)
        self._rule_files = [p.resolve() for p in rule_files]
        self._interval = f"{interval_s}s"
        super().__init__(
            binary=found, port=None, workdir=None, startup_timeout=startup_timeout, stop_grace=5.0
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _config(self) -> dict[str, Any]:
        return {
            "global": {
                "scrape_interval": self._interval,
                "scrape_timeout": self._interval,
                "evaluation_interval": self._interval,
            },
            "rule_files": [str(p) for p in self._rule_files],
            "scrape_configs": [
                {
                    "job_name": job,
                    "metrics_path": path,
                    "static_configs": [{"targets": [address]}],
                }
                for job, (address, path) in self._targets.items()
            ],
        }

    def _argv(self, port: int) -> list[str]:
        config = self.workdir / "prometheus.yml"
        config.write_text(json.dumps(self._config(), indent=2))  # JSON is YAML
        return [
            self.binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address={self.host}:{port}",
            "--log.level=warn",
        ]

    def _probe(self, port: int, pid: int, timeout: float) -> None:
        try:
            response = httpx.get(f"http://{self.host}:{port}/-/ready", timeout=timeout)
        except httpx.HTTPError as exc:
            raise ProbeFailed(f"/-/ready: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise ProbeFailed(f"/-/ready answered {response.status_code}")

    # -- the HTTP API ---------------------------------------------------------------------

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or a one-element list for a scalar) `expr` evaluates to now."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10.0)
        body = response.json()
        if body.get("status") != "success":
            raise PrometheusQueryError(f"{expr!r}: {body.get('errorType')}: {body.get('error')}")
        data = body["data"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def alerts(self) -> list[Alert]:
        """Every alert now pending or firing."""
        body = httpx.get(f"{self.url}/api/v1/alerts", timeout=10.0).json()
        return [
            Alert(a["labels"]["alertname"], a["state"], a["labels"]) for a in body["data"]["alerts"]
        ]

    def target_health(self) -> dict[str, str]:
        """Job name -> ``up``, ``down`` or ``unknown`` of the active scrape targets."""
        body = httpx.get(f"{self.url}/api/v1/targets", timeout=10.0).json()
        return {t["labels"]["job"]: t["health"] for t in body["data"]["activeTargets"]}

    def wait_for_scrape(self, job: str, timeout: float = 15.0) -> None:
        """Return once `job`'s target has been scraped successfully."""
        deadline = time.monotonic() + timeout
        while self.target_health().get(job) != "up":
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"prometheus never scraped {job} successfully: {self.target_health()}"
                )
            time.sleep(0.2)
