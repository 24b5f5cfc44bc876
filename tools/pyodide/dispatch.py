"""Call one `package.module:function` with a str payload: the Python half of `run.mjs`.

`run.mjs` copies this file into Pyodide's file system and calls `dispatch` once per request; it
also runs unchanged under CPython, which is how tests compare error handling on both sides.
The function named by an entry takes one `str` and returns a `str`.

It must never raise (every failure, `BaseException` included, becomes `(False, traceback)` so the
Node process keeps serving), never print (stdout is redirected, but output is not a result), and
never import anything beyond the stdlib: it runs before any project package is importable.
"""

from __future__ import annotations

import importlib
import inspect
import json
import platform
import sys
import traceback
from collections.abc import Callable


class EntryError(ValueError):
    """An entry string does not name a callable as `package.module:function`."""


def resolve(entry: str) -> Callable[[str], object]:
    """Import the module of `entry` and return its (possibly dotted) attribute, a callable."""
    module_name, separator, attribute_path = entry.partition(":")
    if not separator or not module_name or not attribute_path:
        raise EntryError(f"entry {entry!r} is not of the form 'package.module:function'")
    target: object = importlib.import_module(module_name)
    for attribute in attribute_path.split("."):
        try:
            target = getattr(target, attribute)
        except AttributeError as exc:
            raise EntryError(f"entry {entry!r}: {module_name} has no {attribute_path}") from exc
    if not callable(target):
        raise EntryError(f"entry {entry!r} names a {type(target).__name__}, not a function")
    return target


def dispatch(entry: str, payload: str) -> tuple[bool, str]:
    """`(True, result)` from calling `entry` with `payload`, or `(False, traceback text)`."""
    try:
        result = resolve(entry)(payload)
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            raise TypeError(f"{entry} returned an awaitable; entries must be synchronous")
        if not isinstance(result, str):
            raise TypeError(f"{entry} returned {type(result).__name__}, expected str")
    except BaseException:
        return False, traceback.format_exc()
    return True, result


def describe() -> str:
    """JSON facts about this interpreter, for the runner's ready message."""
    return json.dumps(
        {
            "python_version": platform.python_version(),
            "implementation": sys.implementation.name,
            "platform": sys.platform,
        }
    )
