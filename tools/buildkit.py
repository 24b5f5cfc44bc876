"""Steps the build scripts of `tools/` share: locks, uv, pins from `uv.lock`, tool runs, stamps.

`tools.pyodide.prepare_wheels`, `tools.workerd.build_worker` and
`tools.workerd.build_pyodide_bundle` each build something into `.toolchain/` or `build/`, safe to
run from parallel processes and skipped when a stamp says the output is current. The pieces they
have in common live here: an exclusive file lock, locating uv, hash-pinned requirement lines
read from `uv.lock`, a `uv pip install --target` of exactly those pins, running an external tool
(raising with its stderr), input digests and stamp checks, and a whole "pinned `--target` site"
kept current behind a stamp. `run_build_module` is how the test harnesses run those scripts.

Every helper that can fail takes `error`, the exception class to raise: a subclass of
`BuildStepError` owned by the calling script, so each script keeps its own error type, and the
messages (which say what is wrong and how to fix it) are the same whichever script calls.

This module must never decide what to build or where (paths, pins and timeouts come from the
caller), never install into the project's virtualenv, never let uv resolve dependencies or pick
a version `uv.lock` does not pin, and never import anything beyond the standard library.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

WHEEL_PLATFORM = "x86_64-manylinux_2_28"
"""Platform whose wheels uv fetches; any works, since callers delete the compiled modules."""

COMPILED_SUFFIXES: tuple[str, ...] = (".so", ".pyd")
"""Compiled extension modules: Pyodide cannot load CPython's, so callers delete them."""

INSTALL_TIMEOUT_SECONDS = 300.0
"""How long one `uv pip install` of the pins may take."""


class BuildStepError(RuntimeError):
    """A build step failed; each script raises its own subclass, with the same messages."""


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


def find_uv(*, error: type[BuildStepError]) -> str:
    """The uv executable: the one running us (`uv run` sets `UV`), else the one on PATH."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        raise error("uv is not on PATH (and UV is unset): install uv")
    return uv


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


def read_lock(lock_path: Path, *, error: type[BuildStepError]) -> dict[str, LockedPackage]:
    """Every registry package of `uv.lock`, by name; fails on anything that cannot be pinned."""
    try:
        document = tomllib.loads(lock_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise error(f"{lock_path} is missing: run `uv lock` first") from exc
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{lock_path} is not valid TOML: {exc}") from exc
    packages: dict[str, LockedPackage] = {}
    for entry in document.get("package", []):
        name = str(entry["name"])
        if "registry" not in entry.get("source", {}):
            continue
        if name in packages:
            raise error(
                f"{lock_path} locks {name} more than once (forked resolution); "
                "this tool needs a single pinned version"
            )
        files = [entry.get("sdist", {}), *entry.get("wheels", [])]
        packages[name] = LockedPackage(
            name=name,
            version=str(entry["version"]),
            hashes=tuple(str(file["hash"]) for file in files if "hash" in file),
            dependencies=tuple(str(dep["name"]) for dep in entry.get("dependencies", [])),
        )
    return packages


def locked_package(
    locked: dict[str, LockedPackage], name: str, *, error: type[BuildStepError]
) -> LockedPackage:
    """The pin of `name`; fails unless the lock has it from a registry, with file hashes."""
    package = locked.get(name)
    if package is None:
        raise error(f"uv.lock pins no registry package named {name!r}")
    if not package.hashes:
        raise error(f"uv.lock lists no file hash for {name}=={package.version}")
    return package


def locked_closure(
    locked: dict[str, LockedPackage], roots: Iterable[str], *, error: type[BuildStepError]
) -> list[LockedPackage]:
    """`roots` and everything they depend on, in name order, each with its locked pin."""
    seen: dict[str, LockedPackage] = {}
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen[name] = locked_package(locked, name, error=error)
        pending.extend(seen[name].dependencies)
    return [seen[name] for name in sorted(seen)]


def requirements_text(lines: Iterable[str]) -> str:
    """A requirements file of `lines`, one a line; it doubles as the up-to-date stamp."""
    return "".join(f"{line}\n" for line in lines)


def run_tool(
    command: Sequence[str],
    *,
    error: type[BuildStepError],
    timeout: float,
    stdout_path: Path | None = None,
    name: str | None = None,
    timeout_hint: str = "",
) -> None:
    """Run an external tool (stdout to `stdout_path` if given), raising `error` with its stderr.

    A timeout is reported as "`name` took over N s" (`name` defaults to the executable), followed
    by `timeout_hint`; a failure quotes the whole command, its exit code and its stderr.
    """
    try:
        if stdout_path is None:
            completed = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
        else:
            with stdout_path.open("wb") as out:
                completed = subprocess.run(
                    command, stdout=out, stderr=subprocess.PIPE, timeout=timeout, check=False
                )
    except subprocess.TimeoutExpired as exc:
        shown = name if name is not None else command[0]
        raise error(f"`{shown}` took over {timeout:.0f} s{timeout_hint}") from exc
    if completed.returncode != 0:
        stderr = completed.stderr.decode("utf-8", "replace").strip()
        raise error(
            f"`{' '.join(command)}` failed with exit code {completed.returncode}:\n{stderr}"
        )


def run_build_module(
    module: str, arguments: Sequence[str], *, repo_root: Path, timeout: float
) -> str:
    """Run the build step `python -m <module> <arguments>` from `repo_root`; return its stdout.

    How callers outside these scripts (test harnesses, benchmarks) run one: in a subprocess of
    this interpreter, so its imports and locks are its own. Raises `BuildStepError` naming the
    module, with its stderr (or its stdout, when stderr is empty) on failure.
    """
    command = [sys.executable, "-m", module, *arguments]
    try:
        completed = subprocess.run(
            command, cwd=repo_root, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BuildStepError(f"{module} took over {timeout:.0f} s") from exc
    if completed.returncode != 0:
        raise BuildStepError(
            f"{module} failed (exit code {completed.returncode}):\n"
            f"{completed.stderr.strip() or completed.stdout.strip()}"
        )
    return completed.stdout


def install_pinned_wheels(
    target: Path, requirements_file: Path, *, uv: str, error: type[BuildStepError]
) -> None:
    """`uv pip install --no-deps --require-hashes --target` the pinned wheels, nothing else."""
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
    run_tool(
        command,
        error=error,
        timeout=INSTALL_TIMEOUT_SECONDS,
        name="uv pip install",
        timeout_hint=" (is PyPI reachable?)",
    )


def inputs_digest(parts: Iterable[bytes], files: Iterable[tuple[str, Path]]) -> str:
    """SHA-256 over `parts`, then each file's name and content digest: a stamp of the inputs."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    for name, path in files:
        digest.update(name.encode("utf-8"))
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def stamp_matches(stamp: Path, wanted: str) -> bool:
    """Whether the stamp file exists and records exactly `wanted`."""
    return stamp.is_file() and stamp.read_text(encoding="utf-8") == wanted


@dataclass(frozen=True, slots=True)
class PinnedSite:
    """A folder that `uv pip install --target` fills from a hash-pinned requirements file."""

    site: Path
    """The installed folder; replaced as a whole when the pins change."""
    stamp: Path
    """The requirements last installed into `site`; equal to the wanted ones means no work."""
    lock_file: Path
    """The file builders of this site serialize on."""


def ensure_pinned_site(
    layout: PinnedSite,
    requirements: str,
    *,
    strip: Callable[[Path], object],
    error: type[BuildStepError],
) -> Path:
    """Make `layout.site` hold exactly `requirements` (then `strip` it); return it.

    The install is staged in a scratch folder beside the site and renamed into place, and the
    stamp is written last, so an interrupted run leaves no stamp and the next run starts over.
    """
    with exclusive_lock(layout.lock_file):
        if layout.site.is_dir() and stamp_matches(layout.stamp, requirements):
            return layout.site
        layout.stamp.unlink(missing_ok=True)
        uv = find_uv(error=error)
        base = layout.site.parent
        base.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=base, prefix="building-") as scratch_name:
            scratch = Path(scratch_name)
            requirements_file = scratch / "requirements.txt"
            requirements_file.write_text(requirements, encoding="utf-8")
            staged = scratch / "site"
            install_pinned_wheels(staged, requirements_file, uv=uv, error=error)
            strip(staged)
            if layout.site.exists():
                shutil.rmtree(layout.site)
            staged.rename(layout.site)
        layout.stamp.write_text(requirements, encoding="utf-8")
    return layout.site
