"""Paths of the deploy/ artifacts and the Prometheus binaries the deploy tests drive.

The binaries come from Debian's `prometheus` package (`.ci/run` installs it); a missing one is a
failure that says how to install it, never a skip.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "rules.yml"
RULES_TEST = PROMETHEUS_DIR / "rules_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "shelfedge.json"


def binary(name: str) -> str:
    """The absolute path of `name` (``promtool`` or ``prometheus``) on PATH."""
    path = shutil.which(name)
    if path is None:
        raise AssertionError(
            f"{name} not found on PATH: install Debian's prometheus package "
            "(apt-get install -y prometheus), as .ci/run does"
        )
    return path
