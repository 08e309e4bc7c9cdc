"""One way to start headless Chromium for browser tests: the machine's binary, quiet flags."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser

# The system Chromium: Playwright never downloads a browser here.
CHROMIUM_PATH = "/usr/bin/chromium"
# No sandbox (containers), no GPU, and nothing that would call out to the network by itself.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium (Playwright, sync API), closed with Playwright on exit."""
    # Imported here: collecting the non-browser tests never pays for Playwright.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM_PATH, headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            yield browser
        finally:
            browser.close()
