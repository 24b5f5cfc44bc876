"""Assemble the deployable Cloudflare Python Worker into `build/worker/`.

Layout (wrangler's Python layout: `python_modules/` must sit beside the config file and outside
the module root):

    build/worker/wrangler.toml      the top-level wrangler.toml with `main` made relative
    build/worker/src/entry.py       tools/workerd/worker_entry.py, the Worker's main module
    build/worker/src/edge/          every *.py of edge/
    build/worker/src/fragments/     every *.py, *.toml, *.j2, *.html of fragments/
    build/worker/python_modules/    workers-runtime-sdk, jinja2, markupsafe (dist-info kept,
                                    compiled .so deleted: Pyodide cannot load CPython's)

The vendored packages are hash-pinned (jinja2 and markupsafe as `uv.lock` locks them) and
installed once into `.toolchain/worker-python-modules/`, reused while the pins are unchanged.
The script prints the raw and gzipped size of what wrangler uploads and fails above 3 MB gzipped.

Run `uv run python -m tools.workerd.build_worker` from the repository root; the shared steps
(lock, pins, install, stamp) are those of `tools.buildkit`. It must never write outside
`build/worker/` and `.toolchain/worker-python-modules/`, and never vendor an unpinned or compiled
package.
"""

from __future__ import annotations

import argparse
import gzip
import io
import re
import shutil
import sys
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tools.buildkit import (
    COMPILED_SUFFIXES,
    BuildStepError,
    PinnedSite,
    ensure_pinned_site,
    locked_package,
    read_lock,
    requirements_text,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The repository root: this file lives in `tools/workerd/`."""

HERE = Path(__file__).resolve().parent
ENTRY_SOURCE = HERE / "worker_entry.py"

CONFIG_MAIN = "build/worker/src/entry.py"
"""`main` in the top-level wrangler.toml; the assembled copy says `src/entry.py`."""

PACKAGE_SOURCES: dict[str, tuple[str, ...]] = {
    "edge": ("*.py",),
    "fragments": ("*.py", "*.toml", "*.j2", "*.html"),
}
"""Our packages copied into the Worker, with the file patterns each contributes."""

LOCKED_VENDOR_PACKAGES: tuple[str, ...] = ("jinja2", "markupsafe")
"""Vendored packages pinned (version and hashes) from uv.lock."""

EXTRA_VENDOR_REQUIREMENTS: tuple[str, ...] = (
    "workers-runtime-sdk==1.9.5 "
    "--hash=sha256:f2b912660a3ab60d2a24920106422f9eaf4cd7a794e42b022237ad2444287fef",
)
"""The Workers Python SDK (`workers` module); not a dependency of the project itself."""

MAX_GZIPPED_BYTES = 3_000_000
"""Cloudflare's smallest Worker size limit (3 MB after compression, Workers Free)."""


class WorkerBuildError(BuildStepError):
    """The Worker could not be assembled; the message says what and how to fix it."""


@dataclass(frozen=True, slots=True)
class WorkerBuild:
    """What an assembly produced."""

    root: Path
    """The assembled folder (`build/worker/`)."""
    files: int
    """Number of files wrangler uploads (modules and vendored files)."""
    raw_bytes: int
    """Their total size."""
    gzipped_bytes: int
    """The size of a gzipped tar of them: the measure Cloudflare's limit applies to."""
    seconds: float
    """Wall time of the assembly."""


def read_locked_requirements(lock_path: Path, names: Iterable[str]) -> list[str]:
    """Hash-pinned requirement lines for `names`, as `uv.lock` locks them."""
    locked = read_lock(lock_path, error=WorkerBuildError)
    return [
        locked_package(locked, name, error=WorkerBuildError).requirement_line() for name in names
    ]


def vendor_requirements(repo_root: Path) -> str:
    """The requirements file for `python_modules/`; it doubles as the cache stamp."""
    lines = [
        *read_locked_requirements(repo_root / "uv.lock", LOCKED_VENDOR_PACKAGES),
        *EXTRA_VENDOR_REQUIREMENTS,
    ]
    return requirements_text(sorted(lines))


def strip_for_pyodide(folder: Path) -> None:
    """Delete compiled modules, bytecode caches and uv's lock file under `folder`."""
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_dir() and path.name == "__pycache__":
            shutil.rmtree(path)
        elif path.suffix in COMPILED_SUFFIXES or path.suffix == ".pyc":
            path.unlink()
    (folder / ".lock").unlink(missing_ok=True)


def vendored_site(repo_root: Path) -> Path:
    """`.toolchain/worker-python-modules/site/`, installed to match the pins; returned."""
    base = repo_root / ".toolchain" / "worker-python-modules"
    layout = PinnedSite(
        site=base / "site", stamp=base / "requirements.txt", lock_file=base / ".build.lock"
    )
    return ensure_pinned_site(
        layout, vendor_requirements(repo_root), strip=strip_for_pyodide, error=WorkerBuildError
    )


def copy_package(source: Path, destination: Path, patterns: Sequence[str]) -> int:
    """Copy the files of package `source` matching `patterns` (recursively); return the count."""
    if not (source / "__init__.py").is_file():
        raise WorkerBuildError(f"{source} is not a Python package (no __init__.py)")
    copied = 0
    for pattern in patterns:
        for path in sorted(source.rglob(pattern)):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            target = destination / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            copied += 1
    return copied


def assembled_config(top_level_config: Path) -> str:
    """The top-level wrangler.toml with `main` rewritten for `build/worker/`."""
    text = top_level_config.read_text(encoding="utf-8")
    try:
        main = tomllib.loads(text).get("main")
    except tomllib.TOMLDecodeError as exc:
        raise WorkerBuildError(f"{top_level_config} is not valid TOML: {exc}") from exc
    if main != CONFIG_MAIN:
        raise WorkerBuildError(f"{top_level_config}: main is {main!r}, expected {CONFIG_MAIN!r}")
    pattern = re.compile(rf'^main = "{re.escape(CONFIG_MAIN)}"$', re.MULTILINE)
    rewritten, count = pattern.subn('main = "src/entry.py"', text)
    if count != 1:
        raise WorkerBuildError(
            f'{top_level_config}: write `main` as one line `main = "{CONFIG_MAIN}"`'
        )
    header = (
        "# GENERATED by tools/workerd/build_worker.py from the repository's wrangler.toml:"
        " edit that one.\n"
    )
    return header + rewritten


def measure_upload(root: Path) -> tuple[int, int, int]:
    """Files, raw bytes and gzipped-tar bytes of what wrangler uploads from `root`."""
    paths = [
        path
        for folder in ("src", "python_modules")
        for path in sorted((root / folder).rglob("*"))
        if path.is_file()
    ]
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w") as archive,
    ):
        for path in paths:
            archive.add(path, arcname=str(path.relative_to(root)), recursive=False)
    return len(paths), sum(path.stat().st_size for path in paths), len(buffer.getvalue())


def build_worker(repo_root: Path = REPO_ROOT, out_dir: Path | None = None) -> WorkerBuild:
    """Assemble the Worker into `out_dir` (default `build/worker/`), replacing what was there."""
    started = time.monotonic()
    root = out_dir if out_dir is not None else repo_root / "build" / "worker"
    site = vendored_site(repo_root)
    config = assembled_config(repo_root / "wrangler.toml")
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=f".{root.name}-") as scratch_name:
        staged = Path(scratch_name) / root.name
        src = staged / "src"
        src.mkdir(parents=True)
        shutil.copyfile(ENTRY_SOURCE, src / "entry.py")
        for package, patterns in PACKAGE_SOURCES.items():
            copy_package(repo_root / package, src / package, patterns)
        shutil.copytree(site, staged / "python_modules")
        (staged / "wrangler.toml").write_text(config, encoding="utf-8")
        files, raw_bytes, gzipped_bytes = measure_upload(staged)
        if gzipped_bytes > MAX_GZIPPED_BYTES:
            raise WorkerBuildError(
                f"the Worker is {gzipped_bytes:,} bytes gzipped, over the "
                f"{MAX_GZIPPED_BYTES:,}-byte limit: vendor less"
            )
        if root.exists():
            shutil.rmtree(root)
        staged.rename(root)
    return WorkerBuild(root, files, raw_bytes, gzipped_bytes, time.monotonic() - started)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: assemble the Worker and print its size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default: build/worker/)"
    )
    arguments = parser.parse_args(argv)
    out_dir = arguments.out.resolve() if arguments.out is not None else None
    try:
        result = build_worker(REPO_ROOT, out_dir)
    except WorkerBuildError as exc:
        print(f"build_worker: {exc}", file=sys.stderr)
        return 1
    print(
        f"{result.root}: {result.files} files, {result.raw_bytes / 1e6:.2f} MB raw, "
        f"{result.gzipped_bytes / 1e6:.2f} MB gzipped "
        f"(limit {MAX_GZIPPED_BYTES / 1e6:.0f} MB), {result.seconds:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
