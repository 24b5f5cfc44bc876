"""The declared dependency floors exclude versions with known vulnerabilities, and the
installed versions meet them."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAFE_FLOORS = {
    "jinja2": (3, 1, 6),  # CVE-2025-27516 (sandbox escape via |attr)
    "h11": (0, 16, 0),  # CVE-2025-43859 (request smuggling)
}


def _floor(spec: str) -> tuple[int, ...]:
    number = spec.split(">=", 1)[1].split(",", maxsplit=1)[0].strip()
    return tuple(int(part) for part in number.split("."))


@pytest.mark.parametrize("name", sorted(SAFE_FLOORS))
def test_floors_exclude_vulnerable_versions(name: str) -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    spec = next(d for d in declared if d.split(">=")[0].split("[")[0].strip() == name)
    floor = _floor(spec)
    assert floor + (0,) * (3 - len(floor)) >= SAFE_FLOORS[name]
    installed = tuple(int(p) for p in version(name).split(".")[:3])
    assert installed >= SAFE_FLOORS[name]
