"""Fetch the pure-Python packages Pyodide needs (jinja2 and what it depends on) into `.toolchain/`.

npm `pyodide` ships no package wheels and must not reach a CDN, so `tools/pyodide/run.mjs` copies
`.toolchain/pyodide-wheels/site/` into the Pyodide file system instead. This module fills that
folder with `uv pip install --target` from PyPI, pinned to the versions *and hashes* in `uv.lock`
(the closure of `jinja2`'s locked dependencies), then deletes every compiled extension module so
MarkupSafe falls back to its pure-Python `_native` code, as it must inside Pyodide.

Run it as `uv run python tools/pyodide/prepare_wheels.py`; it is idempotent (a pinned requirements
file next to `site/` records what was installed, and a matching one means no work) and safe to
run from parallel processes (an exclusive file lock).

It must never install into the project's virtualenv, never pick a version `uv.lock` does not pin,
and never leave a compiled `.so`/`.pyd` in `site/`.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The repository root: this file lives in `tools/pyodide/`."""

ROOT_PACKAGES: tuple[str, ...] = ("jinja2",)
"""What Pyodide needs beyond its stdlib (`fragments` renders with Jinja2); the rest is locked."""

WHEEL_PLATFORM = "x86_64-manylinux_2_28"
"""Platform whose wheels uv fetches; any works, since the compiled modules are deleted."""

EXTENSION_SUFFIXES: tuple[str, ...] = (".so", ".pyd")
"""Compiled extension modules: Pyodide cannot load CPython's, so none may stay in `site/`."""

INSTALL_TIMEOUT_SECONDS = 300.0


class WheelPreparationError(RuntimeError):
    """The Pyodide packages could not be prepared; the message says what and how to fix it."""


@dataclass(frozen=True, slots=True)
class LockedPackage:
    """One package as `uv.lock` pins it."""

    name: str
    """Normalized distribution name, as written in `uv.lock`."""
    version: str
    """The exact locked version."""
    hashes: tuple[str, ...]
    """Every `sha256:` hash the lock lists for it (sdist and wheels): uv must match one."""
    dependencies: tuple[str, ...]
    """Names of its locked dependencies (all markers included, to stay conservative)."""

    def requirement_line(self) -> str:
        """This package as a hash-pinned requirements line."""
        hash_options = " ".join(f"--hash={value}" for value in self.hashes)
        return f"{self.name}=={self.version} {hash_options}"


def toolchain_dir(repo_root: Path = REPO_ROOT) -> Path:
    """The folder this module owns: `.toolchain/pyodide-wheels/`."""
    return repo_root / ".toolchain" / "pyodide-wheels"


def site_dir(repo_root: Path = REPO_ROOT) -> Path:
    """The folder `run.mjs` copies into Pyodide's file system."""
    return toolchain_dir(repo_root) / "site"


def read_lock(lock_path: Path) -> dict[str, LockedPackage]:
    """Every registry package of `uv.lock`, by name; fails on anything this module cannot pin."""
    try:
        document = tomllib.loads(lock_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise WheelPreparationError(f"{lock_path} is missing: run `uv lock` first") from exc
    except tomllib.TOMLDecodeError as exc:
        raise WheelPreparationError(f"{lock_path} is not valid TOML: {exc}") from exc
    packages: dict[str, LockedPackage] = {}
    for entry in document.get("package", []):
        name = str(entry["name"])
        if "registry" not in entry.get("source", {}):
            continue
        if name in packages:
            raise WheelPreparationError(
                f"{lock_path} locks {name} more than once (forked resolution); "
                "this tool needs a single pinned version"
            )
        files = [entry.get("sdist", {}), *entry.get("wheels", [])]
        hashes = tuple(str(file["hash"]) for file in files if "hash" in file)
        packages[name] = LockedPackage(
            name=name,
            version=str(entry["version"]),
            hashes=hashes,
            dependencies=tuple(str(dep["name"]) for dep in entry.get("dependencies", [])),
        )
    return packages


def locked_closure(locked: dict[str, LockedPackage], roots: Sequence[str]) -> list[LockedPackage]:
    """`roots` and everything they depend on, in name order, each with its locked pin."""
    seen: dict[str, LockedPackage] = {}
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        package = locked.get(name)
        if package is None:
            raise WheelPreparationError(f"uv.lock pins no registry package named {name!r}")
        if not package.hashes:
            raise WheelPreparationError(f"uv.lock lists no file hash for {name}=={package.version}")
        seen[name] = package
        pending.extend(package.dependencies)
    return [seen[name] for name in sorted(seen)]


def requirements_text(packages: Sequence[LockedPackage]) -> str:
    """The hash-pinned requirements file for `packages`; it doubles as the up-to-date stamp."""
    return "".join(f"{package.requirement_line()}\n" for package in packages)


def find_uv() -> str:
    """The uv executable: the one running us (`uv run` sets `UV`), else the one on PATH."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        raise WheelPreparationError("uv is not on PATH (and UV is unset): install uv")
    return uv


@contextmanager
def exclusive_lock(lock_file: Path) -> Iterator[None]:
    """Serialize preparers (parallel test sessions) on `lock_file`."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def install_into(target: Path, requirements_file: Path, uv: str) -> None:
    """`uv pip install --target` the pinned, hash-checked wheels, without dependency resolution."""
    command = [
        uv,
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
            command,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise WheelPreparationError(
            f"`uv pip install` took over {INSTALL_TIMEOUT_SECONDS:.0f} s (is PyPI reachable?)"
        ) from exc
    if completed.returncode != 0:
        raise WheelPreparationError(
            f"`{' '.join(command)}` failed with exit code {completed.returncode}:\n"
            f"{completed.stderr.strip()}"
        )


def strip_extension_modules(folder: Path) -> list[Path]:
    """Delete compiled extension modules (and uv's bookkeeping lock) under `folder`."""
    removed = [path for path in sorted(folder.rglob("*")) if path.suffix in EXTENSION_SUFFIXES]
    for path in removed:
        path.unlink()
    (folder / ".lock").unlink(missing_ok=True)
    return removed


def prepare_wheels(repo_root: Path = REPO_ROOT) -> Path:
    """Make `.toolchain/pyodide-wheels/site/` match `uv.lock`; return it. No-op when it does."""
    wanted = requirements_text(locked_closure(read_lock(repo_root / "uv.lock"), ROOT_PACKAGES))
    base = toolchain_dir(repo_root)
    site = site_dir(repo_root)
    stamp = base / "requirements.txt"
    with exclusive_lock(base.parent / "pyodide-wheels.lock"):
        if site.is_dir() and stamp.is_file() and stamp.read_text(encoding="utf-8") == wanted:
            return site
        stamp.unlink(missing_ok=True)
        uv = find_uv()
        base.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=base, prefix="building-") as scratch:
            scratch_dir = Path(scratch)
            requirements_file = scratch_dir / "requirements.txt"
            requirements_file.write_text(wanted, encoding="utf-8")
            staged = scratch_dir / "site"
            install_into(staged, requirements_file, uv)
            strip_extension_modules(staged)
            if site.exists():
                shutil.rmtree(site)
            staged.rename(site)
        stamp.write_text(wanted, encoding="utf-8")
    return site


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: prepare the folder and print where it is."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--repo-root", type=Path, default=REPO_ROOT, help="repository holding uv.lock"
    )
    arguments = parser.parse_args(argv)
    try:
        site = prepare_wheels(arguments.repo_root.resolve())
    except WheelPreparationError as exc:
        print(f"prepare_wheels: {exc}", file=sys.stderr)
        return 1
    print(site)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
