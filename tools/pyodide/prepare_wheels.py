"""Fetch the pure-Python packages Pyodide needs (jinja2 and what it depends on) into `.toolchain/`.

npm `pyodide` ships no package wheels and must not reach a CDN, so `tools/pyodide/run.mjs` copies
`.toolchain/pyodide-wheels/site/` into the Pyodide file system instead. This module fills that
folder with `uv pip install --target` from PyPI, pinned to the versions *and hashes* in `uv.lock`
(the closure of `jinja2`'s locked dependencies), then deletes every compiled extension module so
MarkupSafe falls back to its pure-Python `_native` code, as it must inside Pyodide.

Run it from the repository root as `uv run python -m tools.pyodide.prepare_wheels`; it is
idempotent (a pinned requirements file next to `site/` records what was installed, and a matching
one means no work) and safe to run from parallel processes (an exclusive file lock). The shared
steps (lock, pins, install, stamp) are those of `tools.buildkit`.

It must never install into the project's virtualenv, never pick a version `uv.lock` does not pin,
and never leave a compiled `.so`/`.pyd` in `site/`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tools.buildkit import (
    COMPILED_SUFFIXES,
    BuildStepError,
    PinnedSite,
    ensure_pinned_site,
    locked_closure,
    read_lock,
    requirements_text,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The repository root: this file lives in `tools/pyodide/`."""

ROOT_PACKAGES: tuple[str, ...] = ("jinja2",)
"""What Pyodide needs beyond its stdlib (`fragments` renders with Jinja2); the rest is locked."""


class WheelPreparationError(BuildStepError):
    """The Pyodide packages could not be prepared; the message says what and how to fix it."""


def toolchain_dir(repo_root: Path = REPO_ROOT) -> Path:
    """The folder this module owns: `.toolchain/pyodide-wheels/`."""
    return repo_root / ".toolchain" / "pyodide-wheels"


def site_dir(repo_root: Path = REPO_ROOT) -> Path:
    """The folder `run.mjs` copies into Pyodide's file system."""
    return toolchain_dir(repo_root) / "site"


def strip_extension_modules(folder: Path) -> list[Path]:
    """Delete compiled extension modules (and uv's bookkeeping lock) under `folder`."""
    removed = [path for path in sorted(folder.rglob("*")) if path.suffix in COMPILED_SUFFIXES]
    for path in removed:
        path.unlink()
    (folder / ".lock").unlink(missing_ok=True)
    return removed


def prepare_wheels(repo_root: Path = REPO_ROOT) -> Path:
    """Make `.toolchain/pyodide-wheels/site/` match `uv.lock`; return it. No-op when it does."""
    locked = read_lock(repo_root / "uv.lock", error=WheelPreparationError)
    packages = locked_closure(locked, ROOT_PACKAGES, error=WheelPreparationError)
    layout = PinnedSite(
        site=site_dir(repo_root),
        stamp=toolchain_dir(repo_root) / "requirements.txt",
        lock_file=repo_root / ".toolchain" / "pyodide-wheels.lock",
    )
    wanted = requirements_text(package.requirement_line() for package in packages)
    return ensure_pinned_site(
        layout, wanted, strip=strip_extension_modules, error=WheelPreparationError
    )


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
