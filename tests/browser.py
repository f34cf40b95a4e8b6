"""Debian chromium in tests: where it is, how it starts, and pages that cannot reach outside.

Every browser test opens its page through :func:`local_page`, which aborts each request that its
``allowed`` test refuses and lists it, so a test can assert that the page needed nothing from the
internet (this machine has no network; chromium's own background traffic is switched off by the flags).
"""

from __future__ import annotations

import shutil
from typing import Callable
from urllib.parse import urlparse

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]
NO_CHROMIUM = "Debian chromium is not installed (scripts/test.sh installs it)"


def is_loopback(url: str) -> bool:
    """A request to this machine's loopback server."""
    return urlparse(url).hostname in ("127.0.0.1", "localhost")


def is_local_file(url: str) -> bool:
    """A request for a local file or inline data (an exported map opened from disk)."""
    return urlparse(url).scheme in ("file", "data")


def local_page(playwright, *, viewport: tuple[int, int], allowed: Callable[[str], bool], blocked: list[str],
               passed: list[str] | None = None):
    """``(browser, page)``: chromium started headless with :data:`CHROMIUM_ARGS`, a page of ``viewport``
    (width, height in CSS pixels) on which every request ``allowed`` refuses is aborted and appended to
    ``blocked``; the URLs let through are appended to ``passed`` when given. The caller closes ``browser``."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})

    def route(request_route):
        url = request_route.request.url
        if allowed(url):
            if passed is not None:
                passed.append(url)
            request_route.continue_()
        else:
            blocked.append(url)
            request_route.abort()

    page.route("**/*", route)
    return browser, page
