"""The README's pictures, taken from a running `make run` demo with headless Debian Chromium (as tests/browser does).

    .venv/bin/python scripts/screenshots.py [--url http://127.0.0.1:8000] [--password-file var/demo_password]

Writes docs/overview.png, docs/wedding.png (the wedding-day-critical wedding) and docs/costs.png.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
# Without these, Chromium tries to reach Google's hosts, which a closed network refuses (as in tests/browser).
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1366, "height": 900}


def page_settle(*, page: Page) -> None:
    """Plotly draws after load: wait until every chart on the page has its SVG."""
    page.wait_for_load_state("networkidle")
    page.wait_for_function("[...document.querySelectorAll('[data-chart]')].every(el => el.querySelector('.main-svg'))",
                           timeout=15_000)


def critical_wedding_path(*, page: Page) -> str:
    """The first wedding the list marks wedding-day critical, else the first wedding."""
    page.goto("/weddings/")
    links = page.eval_on_selector_all("a[href^='/weddings/']",
                                      "els => els.map(e => [e.href, e.closest('tr')?.innerText || ''])")
    weddings = [(href, row) for href, row in links if re.search(r"/weddings/[^/]+/$", href) and "/import/" not in href]
    critical = [href for href, row in weddings if "critical" in row.lower()]
    return (critical or [weddings[0][0]])[0]


def screenshots_take(*, url: str, username: str, password: str, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_context(viewport=VIEWPORT, base_url=url).new_page()
        page.goto("/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit], input[type=submit]")
        page.wait_for_load_state("networkidle")
        shots = []
        for name, path in (("overview", "/"), ("wedding", critical_wedding_path(page=page)), ("costs", "/costs/")):
            page.goto(path)
            page_settle(page=page)
            shots.append(out / f"{name}.png")
            # The Costs page lists every proposal: its top (totals, charts, the first proposals) is the picture.
            clip = {"x": 0, "y": 0, "width": VIEWPORT["width"], "height": 1900} if name == "costs" else None
            page.screenshot(path=str(shots[-1]), full_page=True, clip=clip)
        browser.close()
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--username", default="demo")
    parser.add_argument("--password-file", type=Path,
                        default=Path(os.environ.get("WEDBACKUP_VAR_DIR", ROOT / "var")) / "demo_password")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    for path in screenshots_take(url=args.url, username=args.username,
                                 password=args.password_file.read_text().strip(), out=args.out):
        print(path)


if __name__ == "__main__":
    main()
