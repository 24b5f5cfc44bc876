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

Run `uv run python tools/workerd/build_worker.py`. It must never write outside `build/worker/`
and `.toolchain/worker-python-modules/`, and never vendor an unpinned or compiled package.
"""

from __future__ import annotations

import argparse
import fcntl
import gzip
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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

WHEEL_PLATFORM = "x86_64-manylinux_2_28"
"""Platform uv fetches wheels for; irrelevant once the compiled modules are deleted."""
COMPILED_SUFFIXES: tuple[str, ...] = (".so", ".pyd")

MAX_GZIPPED_BYTES = 3_000_000
"""Cloudflare's smallest Worker size limit (3 MB after compression, Workers Free)."""

INSTALL_TIMEOUT_SECONDS = 300.0


class WorkerBuildError(RuntimeError):
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
    try:
        document = tomllib.loads(lock_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise WorkerBuildError(f"{lock_path} is missing: run `uv lock`") from exc
    by_name = {str(entry["name"]): entry for entry in document.get("package", [])}
    lines = []
    for name in names:
        entry = by_name.get(name)
        if entry is None or "registry" not in entry.get("source", {}):
            raise WorkerBuildError(f"uv.lock pins no registry package named {name!r}")
        files = [entry.get("sdist", {}), *entry.get("wheels", [])]
        hashes = [str(file["hash"]) for file in files if "hash" in file]
        if not hashes:
            raise WorkerBuildError(f"uv.lock lists no hash for {name}=={entry['version']}")
        options = " ".join(f"--hash={value}" for value in hashes)
        lines.append(f"{name}=={entry['version']} {options}")
    return lines


def vendor_requirements(repo_root: Path) -> str:
    """The requirements file for `python_modules/`; it doubles as the cache stamp."""
    lines = [
        *read_locked_requirements(repo_root / "uv.lock", LOCKED_VENDOR_PACKAGES),
        *EXTRA_VENDOR_REQUIREMENTS,
    ]
    return "".join(f"{line}\n" for line in sorted(lines))


@contextmanager
def exclusive_lock(lock_file: Path) -> Iterator[None]:
    """Serialize builders (parallel test sessions) on `lock_file`."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def find_uv() -> str:
    """The uv executable: the one running us (`uv run` sets `UV`), else the one on PATH."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        raise WorkerBuildError("uv is not on PATH (and UV is unset): install uv")
    return uv


def pip_install_target(target: Path, requirements_file: Path) -> None:
    """`uv pip install --no-deps --require-hashes --target` the pinned wheels."""
    command = [
        find_uv(),
        "pip",
        "install",
        "--python",
        sys.executable,
        "--no-deps",
        "--require-hashes",
        "--only-binary",
        ":all:",
        "--python-platform",
        WHEEL_PLATFORM,
        "--target",
        str(target),
        "--requirements",
        str(requirements_file),
    ]
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise WorkerBuildError(
            f"`uv pip install` took over {INSTALL_TIMEOUT_SECONDS:.0f} s (is PyPI reachable?)"
        ) from exc
    if completed.returncode != 0:
        raise WorkerBuildError(
            f"`{' '.join(command)}` failed with exit code {completed.returncode}:\n"
            f"{completed.stderr.strip()}"
        )


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
    wanted = vendor_requirements(repo_root)
    base = repo_root / ".toolchain" / "worker-python-modules"
    site = base / "site"
    stamp = base / "requirements.txt"
    with exclusive_lock(base / ".build.lock"):
        if site.is_dir() and stamp.is_file() and stamp.read_text(encoding="utf-8") == wanted:
            return site
        stamp.unlink(missing_ok=True)
        with tempfile.TemporaryDirectory(dir=base, prefix="building-") as scratch_name:
            scratch = Path(scratch_name)
            requirements_file = scratch / "requirements.txt"
            requirements_file.write_text(wanted, encoding="utf-8")
            staged = scratch / "site"
            pip_install_target(staged, requirements_file)
            strip_for_pyodide(staged)
            if site.exists():
                shutil.rmtree(site)
            staged.rename(site)
        stamp.write_text(wanted, encoding="utf-8")
    return site


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
