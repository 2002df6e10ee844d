"""A headless Debian chromium (selenium + chromedriver) and a live app with history,
shared by the dashboard browser test and ``scripts/dashboard_screenshots.py``.

Nothing here downloads anything: the Service points at /usr/bin/chromedriver,
so selenium-manager is never asked for a driver or a browser.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sentia_core import Sentia
from sentia_core._demo_live import LiveService, live_config
from sentia_core.testing import ManualClock

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: Seconds of simulated time per step (the finest history tier's resolution).
STEP = 10.0


def browser_missing() -> str | None:
    """Why no browser can run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.exists(path) or shutil.which(os.path.basename(path))):
            return f"{path} not installed (Debian packages chromium, chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed (the dev extra)"
    return None


@contextmanager
def chrome(width: int = 1280, height: int = 800) -> Iterator[Any]:
    """A headless chromium with browser and performance (network) logs enabled."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--no-first-run", "--no-default-browser-check", "--disable-extensions",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--metrics-recording-only", "--hide-scrollbars",
        f"--window-size={width},{height}", "--force-device-scale-factor=1", "--lang=en-US",
    ):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(20)
        driver.set_script_timeout(10)
        yield driver
    finally:
        driver.quit()


class LiveApp:
    """A Sentia on a ManualClock with a :class:`LiveService` and hours of history."""

    def __init__(self, hours: float = 2.0) -> None:
        start = time.time() - hours * 3600
        self.clock = ManualClock(wall_start=start)
        self.app = Sentia(live_config("sentia-dashboard-test"), clock=self.clock)
        self.service = LiveService(self.app)
        self.run(int(hours * 3600 / STEP))

    def run(self, steps: int) -> None:
        """``steps`` rounds of traffic, each followed by a monitor tick and STEP seconds."""
        for _ in range(steps):
            self.service.step()
            self.app.monitor.tick()
            self.clock.advance(STEP)

    def close(self) -> None:
        self.service.close()
        self.app.close()


def wait_for(driver: Any, script: str, timeout: float = 15.0) -> Any:
    """Poll ``script`` (a JS expression) until it is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script("return " + script)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {script}")
        time.sleep(0.05)
