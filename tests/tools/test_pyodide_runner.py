"""The Pyodide runner runs repository code inside real Pyodide and matches CPython byte for byte."""

from __future__ import annotations

import importlib.metadata
import json
import time

import pytest

from tests.support.pyodide import (
    PyodideCallError,
    PyodideError,
    PyodideProcessError,
    PyodideRunner,
    PyodideTimeoutError,
    prepare_pyodide_wheels,
)
from tests.tools import pyodide_probe

PROBE = "tests.tools.pyodide_probe"

CARDS = [
    pytest.param(
        {
            "sku": "SKU-1",
            "title": "Trail shoe",
            "url": "/p/sku-1",
            "price_cents": 12999,
            "currency": "EUR",
            "badges": ["sale", "eco"],
            "meta": {"rank": 1},
        },
        id="plain",
    ),
    pytest.param(
        {
            "sku": 'SKU-"2"',
            "title": "<script>alert('x')</script> & friends",
            "url": 'javascript:alert(1)//"><img src=x>',
            "price_cents": 5,
            "currency": "€",
            "badges": [],
            "meta": {"note": "</script><!--", "quote": "it's"},
        },
        id="hostile-markup",
    ),
    pytest.param(
        {
            "sku": "SKU-3",
            "title": "Schuhe für Größe 44 — sehr lang, damit truncate greift, ja wirklich",
            "url": "/p/ß?q=a&b=ç",
            "price_cents": 100000,
            "currency": "¥",
            "badges": ["Ünïcödé", "😀 emoji", "zeta"],
            "meta": {"newline": "a\nb", "tab": "\t"},
        },
        id="unicode-and-truncate",
    ),
]


@pytest.mark.parametrize("card", CARDS)
def test_sandboxed_autoescaped_render_is_byte_identical(
    pyodide: PyodideRunner, card: dict[str, object]
) -> None:
    payload = json.dumps(card)
    under_cpython = pyodide_probe.render_card(payload)

    under_pyodide = pyodide.call(f"{PROBE}:render_card", payload)

    assert under_pyodide.encode("utf-8") == under_cpython.encode("utf-8")
    assert "sandbox: blocked (SecurityError" in under_pyodide
    assert "<script>" not in under_pyodide


def test_runtime_is_python_314_under_emscripten_with_locked_template_packages(
    pyodide: PyodideRunner,
) -> None:
    facts = json.loads(pyodide.call(f"{PROBE}:runtime_facts", "ping"))

    assert facts["python_version"].startswith("3.14.")
    assert pyodide.info.python_version == facts["python_version"]
    assert facts["platform"] == "emscripten"
    assert facts["jinja2"] == importlib.metadata.version("jinja2")
    assert facts["markupsafe"] == importlib.metadata.version("markupsafe")
    assert facts["markupsafe_escape"] == "pure-python"
    assert facts["payload"] == "ping"


def test_fragments_topics_imports_inside_pyodide(pyodide: PyodideRunner) -> None:
    assert pyodide.call(f"{PROBE}:topic_names", "") == pyodide_probe.topic_names("")


def test_exception_inside_pyodide_surfaces_with_its_traceback(pyodide: PyodideRunner) -> None:
    with pytest.raises(PyodideCallError) as raised:
        pyodide.call(f"{PROBE}:fail", "SKU-9")

    error = raised.value
    assert error.entry == f"{PROBE}:fail"
    assert error.traceback.startswith("Traceback (most recent call last):")
    assert "pyodide_probe.py" in error.traceback
    assert "in check_stock" in error.traceback
    assert error.traceback.rstrip().endswith("ValueError: probe failure: SKU-9")
    assert "ValueError: probe failure: SKU-9" in str(error)
    assert pyodide.call(f"{PROBE}:echo", "still serving") == "still serving"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        pytest.param("no_such_package.module:run", "ModuleNotFoundError", id="missing-module"),
        pytest.param(f"{PROBE}:no_such_function", "has no no_such_function", id="missing-name"),
        pytest.param(f"{PROBE}", "is not of the form", id="no-colon"),
        pytest.param(f"{PROBE}:CARD_TEMPLATE", "names a str, not a function", id="not-callable"),
        pytest.param("builtins:len", "returned int, expected str", id="wrong-return-type"),
    ],
)
def test_bad_entries_are_call_errors(pyodide: PyodideRunner, entry: str, expected: str) -> None:
    with pytest.raises(PyodideCallError, match=expected):
        pyodide.call(entry, "payload")


def test_python_output_goes_to_stderr_not_the_protocol(pyodide: PyodideRunner) -> None:
    payload = 'line one\nline "two" {"id": 0}'

    assert pyodide.call(f"{PROBE}:noisy_echo", payload) == payload

    deadline = time.monotonic() + 5.0
    while "noisy stderr: line one" not in pyodide.stderr_tail() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "noisy stdout: line one" in pyodide.stderr_tail()
    assert "noisy stderr: line one" in pyodide.stderr_tail()


def test_large_unicode_payload_round_trips(pyodide: PyodideRunner) -> None:
    payload = "".join(chr(code) for code in range(0x20, 0x3000)) * 40

    assert pyodide.call(f"{PROBE}:echo", payload) == payload


def test_hung_call_times_out_and_closes_its_runner() -> None:
    prepare_pyodide_wheels()
    with PyodideRunner(packages=("tests",)) as runner:
        started = time.monotonic()
        with pytest.raises(PyodideTimeoutError, match="within 1 s while calling"):
            runner.call(f"{PROBE}:spin", "60", timeout=1.0)
        assert time.monotonic() - started < 10.0
        with pytest.raises(PyodideError, match="not running"):
            runner.call(f"{PROBE}:echo", "after the timeout")


def test_startup_failure_names_the_problem() -> None:
    prepare_pyodide_wheels()
    runner = PyodideRunner(packages=("no_such_folder",))

    with pytest.raises(PyodideProcessError, match="--package no_such_folder: no folder"):
        runner.start()
    with pytest.raises(PyodideError, match="not running"):
        runner.call(f"{PROBE}:echo", "never started")
