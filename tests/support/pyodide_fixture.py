"""The session-scoped `pyodide` pytest fixture: one `PyodideRunner` shared by every test.

It prepares the Pyodide wheels folder first (idempotent, fast when already done) and copies
`edge`, `fragments` and `tests` into Pyodide, so test-only probe modules are importable there.
Register it with `pytest_plugins = ("tests.support.pyodide_fixture",)` in the root conftest, or
re-export it from a directory's conftest. It must never start more than one runner per session.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.pyodide import PyodideRunner, prepare_pyodide_wheels

PYODIDE_TEST_PACKAGES: tuple[str, ...] = ("edge", "fragments", "tests")


@pytest.fixture(scope="session")
def pyodide() -> Iterator[PyodideRunner]:
    """A started runner with the repository's packages importable inside Pyodide."""
    prepare_pyodide_wheels()
    with PyodideRunner(packages=PYODIDE_TEST_PACKAGES) as runner:
        yield runner
