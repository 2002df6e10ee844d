"""Render the screenshots of the monitor dashboard used by docs/monitor.md.

    python scripts/dashboard_screenshots.py        # writes docs/img/dashboard-*.png

Runs the demo's simulated service (``sentia_core._demo_live.LiveService``) on
a ManualClock for two hours of simulated traffic, serves the dashboard on
127.0.0.1 and photographs it with the Debian chromium the browser test uses
(tests/monitor/_browser.py): the full page at 1280 px wide and the top of it
on a 390 px phone screen. The PNGs are reduced to a 256-colour palette to
stay small. Never edit the images by hand; re-run this script.
"""

from __future__ import annotations

import base64
import io
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from PIL import Image  # noqa: E402

from tests.monitor._browser import LiveApp, chrome, wait_for  # noqa: E402

OUT = ROOT / "docs" / "img"


def _shot(driver: object, path: Path, full: bool) -> None:
    if full:
        height = driver.execute_script("return document.documentElement.scrollHeight")  # type: ignore[attr-defined]
        width = driver.execute_script("return document.documentElement.clientWidth")  # type: ignore[attr-defined]
        shot = driver.execute_cdp_cmd(  # type: ignore[attr-defined]
            "Page.captureScreenshot",
            {"captureBeyondViewport": True,
             "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}},
        )  # fmt: skip
    else:
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {})  # type: ignore[attr-defined]
    image = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
    image = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    image.save(path, optimize=True)
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KB, {image.size})")


def main() -> int:
    logging.disable(logging.WARNING)
    OUT.mkdir(parents=True, exist_ok=True)
    live = LiveApp(hours=2.0)
    server = live.app.monitor.serve("127.0.0.1", 0)
    try:
        with chrome(1280, 800) as driver:
            driver.get(server.url + "/?refresh=60")
            wait_for(driver, "document.body.dataset.updates >= 1")
            driver.execute_script("window.dispatchEvent(new Event('resize'))")
            wait_for(driver, "true")
            _shot(driver, OUT / "dashboard-1280.png", full=True)
            driver.set_window_size(390, 844)
            wait_for(driver, "document.documentElement.clientWidth <= 400")
            driver.execute_script("window.dispatchEvent(new Event('resize'))")
            driver.execute_script("return new Promise(r => setTimeout(r, 300))")
            _shot(driver, OUT / "dashboard-narrow.png", full=False)
    finally:
        server.stop()
        live.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
