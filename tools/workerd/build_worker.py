"""Assemble the deployable Cloudflare Python Worker into `build/worker/`.

Layout (wrangler's Python layout: `python_modules/` must sit beside the config file and outside
the module root):

    build/worker/wrangler.toml      the top-level wrangler.toml with `main` made relative
    build/worker/src/entry.py       tools/workerd/worker_entry.py, the Worker's main module
    build/worker/src/edge/          the modules of edge/ the entry imports (transitively)
    build/worker/src/fragments/     the modules of fragments/ it imports, and slots.toml
    build/worker/python_modules/    workers-runtime-sdk (dist-info kept, compiled .so deleted:
                                    Pyodide cannot load CPython's)

Only what the Worker imports ships (`worker_modules`: the entry's first-party import closure,
found by parsing, as tools/wasi/build_inputs.py finds a WASI build's): the edge renders
nothing, so fragments' rendering (jinja2 templates) and the vendored jinja2 and markupsafe
stay out, which keeps the upload and the start-up (Cloudflare snapshots the top-level import,
at most 1 s of CPU) small. The vendored packages are hash-pinned and installed once into
`.toolchain/worker-python-modules/` (jinja2 and markupsafe as `uv.lock` locks them are still
installed there, a cache shared with earlier builds, but not shipped: `NOT_SHIPPED`), reused
while the pins are unchanged.
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
from tools.wasi.build_inputs import first_party_sources

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The repository root: this file lives in `tools/workerd/`."""

HERE = Path(__file__).resolve().parent
ENTRY_SOURCE = HERE / "worker_entry.py"

CONFIG_MAIN = "build/worker/src/entry.py"
"""`main` in the top-level wrangler.toml; the assembled copy says `src/entry.py`."""

PACKAGES: tuple[str, ...] = ("edge", "fragments")
"""Our packages whose imported modules go into the Worker."""
DATA_FILES: tuple[str, ...] = ("fragments/slots.toml",)
"""Files the Worker reads at run time (`fragments.slots.load_slots`)."""
NOT_SHIPPED: tuple[str, ...] = ("jinja2", "markupsafe")
"""Vendored site packages the Worker never imports (installed, not uploaded)."""

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


def worker_modules(repo_root: Path, entry: Path = ENTRY_SOURCE) -> list[Path]:
    """The files of `PACKAGES` the entry imports, directly or not (paths under `repo_root`)."""
    found = first_party_sources(entry, [repo_root])
    wanted = tuple(repo_root.resolve() / package for package in PACKAGES)
    modules = [path for path in found if path.is_relative_to(wanted[0]) or any(
        path.is_relative_to(folder) for folder in wanted[1:]
    )]  # fmt: skip
    if not modules:
        raise WorkerBuildError(f"{entry} imports nothing of {', '.join(PACKAGES)}")
    return modules


def module_names(repo_root: Path, files: Iterable[Path]) -> list[str]:
    """Dotted module names of first-party files (``pkg/__init__.py`` -> ``pkg``)."""
    names = []
    for path in files:
        parts = path.resolve().relative_to(repo_root.resolve()).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(names)


def copy_files(repo_root: Path, files: Iterable[Path], destination: Path) -> int:
    """Copy `files` (under `repo_root`) into `destination`, keeping their relative paths."""
    copied = 0
    for path in files:
        target = destination / path.resolve().relative_to(repo_root.resolve())
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        copied += 1
    return copied


def _not_shipped(folder: str, names: list[str]) -> set[str]:
    """`shutil.copytree` ignore: the `NOT_SHIPPED` packages and their dist-info, at the top."""
    if Path(folder).name != "site":
        return set()
    return {
        name
        for name in names
        for package in NOT_SHIPPED
        if name == package or (name.startswith(f"{package}-") and name.endswith(".dist-info"))
    }


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
        copy_files(repo_root, worker_modules(repo_root), src)
        copy_files(repo_root, [repo_root / name for name in DATA_FILES], src)
        shutil.copytree(site, staged / "python_modules", ignore=_not_shipped)
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
