"""Refresh the README's screenshots of the admin UI: ``uv run python -m tools.screenshots``.

Runs the real-browser test (`tests/browser/test_admin_flow.py`: the whole stack on free ports,
headless Debian Chromium) with ``SHELFEDGE_SCREENSHOTS_DIR`` pointing at ``docs/screenshots/``,
so the pictures show exactly what the test proved: the list, the form with a live validation
error, the storefront as each variant and the results. The test's own assertions still apply:
if it fails, no picture is trusted and the exit status says so. It never edits other files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
TEST = Path("tests") / "browser" / "test_admin_flow.py"
VARIABLE = "SHELFEDGE_SCREENSHOTS_DIR"


def main() -> int:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, VARIABLE: str(SCREENSHOTS)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(TEST), "-q", "-p", "no:cacheprovider"],
        cwd=REPO_ROOT,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        print(f"screenshots: the browser test failed (exit {done.returncode})", file=sys.stderr)
        return done.returncode
    for picture in sorted(SCREENSHOTS.glob("*.png")):
        print(f"{picture.relative_to(REPO_ROOT)}  {picture.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
