"""Fixtures for the tests of `tools/`: the shared Pyodide runner."""

from __future__ import annotations

from tests.support.pyodide_fixture import pyodide

__all__ = ["pyodide"]
