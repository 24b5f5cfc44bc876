"""Fixtures of the browser tests: the running stack, one headless Chromium, a screenshot folder.

- `stack`: `tests.browser.stack.running_stack()` for the module (Redis, broker, catalog,
  origin, local edge, aggregator on free ports);
- `browser`: Debian's Chromium driven by Playwright, shared by the module;
- `screenshots`: where tests save screenshots: ``SHELFEDGE_SCREENSHOTS_DIR`` when set (what
  ``python -m tools.screenshots`` does, to refresh ``docs/screenshots/``), else a temporary
  folder, so a plain test run never rewrites files of the repository.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.browser.stack import Stack, chromium, running_stack

SCREENSHOTS_VARIABLE = "SHELFEDGE_SCREENSHOTS_DIR"


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[Stack]:
    async with running_stack() as running:
        yield running


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await chromium(playwright)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    configured = os.environ.get(SCREENSHOTS_VARIABLE)
    folder = Path(configured) if configured else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
