"""`make edge-bundle`, checked: the deployable Worker's size, config and contents.

`python -m tools.workerd.build_worker --out <tmp>` is run once per module, as a subprocess from
the repository root, as the Makefile runs it. The tests check what it reports against a gzipped
size measured here independently, that the deployable top-level `wrangler.toml` (and the
assembled copy) carries no development flag outside `[env.test]`, and that the assembled Worker
holds the modules of `edge/` and `fragments/` its entry imports (no rendering: no jinja2,
markupsafe or templates) and the vendored Workers SDK, without compiled modules, and that those
modules import without jinja2 or markupsafe.
Never writes outside its temporary folder (the build's own vendoring cache excepted).
"""

from __future__ import annotations

import gzip
import io
import re
import subprocess
import sys
import tarfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.workerd import REPO_ROOT
from tools.workerd.build_worker import module_names, worker_modules

BUILD_MODULE = "tools.workerd.build_worker"
LIMIT_BYTES = 3_000_000
"""Cloudflare's Worker size limit on the Free plan: 3 MB after compression."""
REPORT = re.compile(
    r"(?P<files>\d+) files, (?P<raw>[\d.]+) MB raw, (?P<gzipped>[\d.]+) MB gzipped "
    r"\(limit 3 MB\)"
)
DEVELOPMENT_FLAG = re.compile(r"python_workers_development|no_python_workers_\w*")
UPLOADED_FOLDERS = ("src", "python_modules")
"""What wrangler uploads from the assembled folder (the config is not part of the Worker)."""
VENDORED = {"workers": "workers_runtime_sdk-*.dist-info"}
"""Vendored import package -> its dist-info folder pattern."""
NEVER_SHIPPED = ("jinja2", "markupsafe", "fragments/render.py", "fragments/cards.py")
"""What the edge never imports (rendering is the origin's), so the Worker must not carry."""


@dataclass(frozen=True, slots=True)
class Built:
    root: Path
    report: str
    """The script's stdout."""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    out = tmp_path_factory.mktemp("edge-bundle") / "worker"
    completed = subprocess.run(
        [sys.executable, "-m", BUILD_MODULE, "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, f"{BUILD_MODULE} failed:\n{completed.stderr}"
    return Built(out, completed.stdout)


def uploaded_files(root: Path) -> list[Path]:
    return sorted(
        path for folder in UPLOADED_FOLDERS for path in (root / folder).rglob("*") if path.is_file()
    )


def gzipped_tar_size(root: Path, paths: list[Path]) -> int:
    """Bytes of a gzip (level 9) of a tar of `paths`, named relative to `root`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path in paths:
            archive.add(path, arcname=str(path.relative_to(root)), recursive=False)
    return len(gzip.compress(buffer.getvalue(), compresslevel=9, mtime=0))


def development_flags(document: Any, where: str = "") -> list[str]:
    """`table.key: value` for every development flag in `document`, skipping `[env.test]`."""
    if where == "env.test":
        return []
    if isinstance(document, dict):
        return [
            hit
            for key, value in document.items()
            for hit in development_flags(value, f"{where}.{key}" if where else str(key))
        ]
    if isinstance(document, list):
        return [hit for item in document for hit in development_flags(item, where)]
    if isinstance(document, str) and DEVELOPMENT_FLAG.search(document):
        return [f"{where}: {document}"]
    return []


def test_reports_a_bundle_under_3_mb_gzipped_and_measures_it_right(built: Built) -> None:
    match = REPORT.search(built.report)
    assert match is not None, f"no size report in {BUILD_MODULE}'s output: {built.report!r}"
    files = uploaded_files(built.root)

    measured = gzipped_tar_size(built.root, files)

    assert int(match["files"]) == len(files)
    assert float(match["raw"]) == pytest.approx(
        sum(p.stat().st_size for p in files) / 1e6, abs=0.01
    )
    assert float(match["gzipped"]) == pytest.approx(measured / 1e6, abs=0.01)
    assert measured < LIMIT_BYTES
    everything = [path for path in sorted(built.root.rglob("*")) if path.is_file()]
    assert gzipped_tar_size(built.root, everything) < LIMIT_BYTES


@pytest.mark.parametrize("config", ["repository", "assembled"])
def test_deploy_config_has_no_development_flags_outside_env_test(built: Built, config: str) -> None:
    path = REPO_ROOT / "wrangler.toml" if config == "repository" else built.root / "wrangler.toml"
    document = tomllib.loads(path.read_text(encoding="utf-8"))

    assert development_flags(document) == [], f"{path} carries development flags"
    assert document["compatibility_flags"] == ["python_workers"]
    test_flags = set(document["env"]["test"]["compatibility_flags"])
    assert {"python_workers", "python_workers_development"} <= test_flags, (
        f"{path}: [env.test] lost the flags that let workerd run offline"
    )


def test_development_flag_finder_sees_flags_outside_env_test() -> None:
    document = tomllib.loads(
        'compatibility_flags = ["python_workers", "python_workers_development"]\n'
        '[env.test]\ncompatibility_flags = ["no_python_workers_20250116"]\n'
        '[env.staging]\ncompatibility_flags = ["no_python_workers_20260610"]\n'
    )

    assert development_flags(document) == [
        "compatibility_flags: python_workers_development",
        "env.staging.compatibility_flags: no_python_workers_20260610",
    ]


def test_worker_holds_our_packages_and_vendored_ones_without_compiled_modules(
    built: Built,
) -> None:
    src, vendored = built.root / "src", built.root / "python_modules"
    config = tomllib.loads((built.root / "wrangler.toml").read_text(encoding="utf-8"))

    assert (built.root / config["main"]).is_file()
    shipped = {p.relative_to(src) for p in src.rglob("*.py")} - {Path("entry.py")}
    closure = {p.relative_to(REPO_ROOT) for p in worker_modules(REPO_ROOT)}
    assert shipped == closure
    assert Path("edge/adapters/cloudflare.py") in shipped
    assert Path("edge/composer.py") in shipped
    assert (src / "fragments" / "slots.toml").is_file()
    assert not list(src.rglob("*.j2"))
    for name in NEVER_SHIPPED:
        assert not (src / name).exists(), f"{name} is shipped"
        assert not (vendored / name).exists(), f"{name} is vendored"
    for module, dist_info in VENDORED.items():
        assert (vendored / module / "__init__.py").is_file(), f"{module} is not vendored"
        assert len(list(vendored.glob(dist_info))) == 1, f"no single {dist_info} in {vendored}"
    compiled = [
        p for p in built.root.rglob("*") if p.suffix in (".so", ".pyd", ".pyc") or ".so." in p.name
    ]
    assert compiled == []


def test_the_workers_modules_import_without_jinja2_or_markupsafe() -> None:
    """Every shipped module but the two that need workerd imports with jinja2 blocked."""
    names = [
        name
        for name in module_names(REPO_ROOT, worker_modules(REPO_ROOT))
        if name not in ("edge.adapters.cloudflare", "edge.adapters.workers_compose")
    ]
    script = (
        "import importlib, sys\n"
        "sys.modules['jinja2'] = None\n"
        "sys.modules['markupsafe'] = None\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print(len(sys.modules))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
