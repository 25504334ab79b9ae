"""Headless Chromium (Debian's `chromium` package) as a person's browser, for testing HTML reports.

The page is loaded from disk with every host name unresolvable, so a page that needed the network
would visibly break. `--dump-dom` returns the DOM after the page's scripts ran.
"""

import subprocess
from html.parser import HTMLParser
from pathlib import Path

from tests.support import system_tools

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # tests may run as root in CI containers
    "--disable-gpu",
    "--disable-background-networking",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--hide-scrollbars",
    "--virtual-time-budget=5000",  # let scripts finish before the DOM is dumped
)


def chromium() -> str:
    """Path of Chromium; a test without it fails saying how to get it (or skips: system_tools.py)."""
    return system_tools.require("chromium")


def _run(arguments: list[str], url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, *arguments, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def dump_dom(page: Path, fragment: str = "") -> str:
    return _run(["--dump-dom"], page.resolve().as_uri() + fragment).stdout


def screenshot(page: Path, png: Path, width: int = 1400, height: int = 2400) -> Path:
    _run([f"--screenshot={png}", f"--window-size={width},{height}"], page.resolve().as_uri())
    return png


class Elements(HTMLParser):
    """Every element of a DOM as (tag, attributes, text directly inside it), in document order."""

    def __init__(self, markup: str):
        super().__init__()
        self.elements: list[tuple[str, dict, list[str]]] = []
        self._open: list[tuple[str, dict, list[str]]] = []
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        element = (tag, dict(attrs), [])
        self.elements.append(element)
        if tag not in ("br", "img", "input", "meta", "link", "circle", "rect", "line", "polyline"):
            self._open.append(element)

    def handle_endtag(self, tag):
        while self._open:
            if self._open.pop()[0] == tag:
                break

    def handle_data(self, data):
        if self._open:
            self._open[-1][2].append(data)

    def find(self, tag: str, **attributes) -> list[tuple[str, dict, list[str]]]:
        return [
            element
            for element in self.elements
            if element[0] == tag
            and all(
                value in (element[1].get(name) or "").split() or element[1].get(name) == value
                for name, value in attributes.items()
            )
        ]
