"""Headless Chromium from Debian driven by Selenium (python3-selenium), for the console tests
and bench/console_load.py. Nothing here downloads a browser or a driver: both paths are
Debian's. Every wait is on observable page state, with a bound."""
import base64
import shutil
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]


def find_binary(*names):
    for name in names:
        path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists()
                                      else None)
        if path:
            return path
    raise RuntimeError(f"none of {names} is installed (scripts/setup.sh --test installs them)")


class Browser:
    """One headless Chromium with a fresh profile; close() removes it."""

    def __init__(self, width=1366, height=900):
        self.profile = tempfile.mkdtemp(prefix="dlipkg-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = find_binary("chromium")
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile}")
        options.add_argument(f"--window-size={width},{height}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        service = Service(find_binary("chromedriver"))
        try:
            self.driver = webdriver.Chrome(service=service, options=options)
        except Exception:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise
        self.driver.set_page_load_timeout(30)
        self.driver.set_script_timeout(30)

    def close(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    # --- waiting on the page ---------------------------------------------------------------
    def wait(self, predicate, what, timeout=20):
        """Polls predicate() until it returns something truthy; fails naming `what`."""
        deadline = time.monotonic() + timeout
        last_error = None
        while time.monotonic() < deadline:
            try:
                value = predicate()
                if value:
                    return value
            except StaleElementReferenceException as e:  # the table re-rendered meanwhile
                last_error = e
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s waiting for {what} "
                             f"({last_error or 'condition never held'})")

    def by_id(self, element_id):
        return self.driver.find_element(By.ID, element_id)

    def css(self, selector):
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def visible(self, element_id):
        return self.wait(lambda: self.by_id(element_id).is_displayed() and
                         self.by_id(element_id), f"#{element_id} to be shown")

    def row(self, name, group=""):
        """The package row of `name` (in `group`), or None."""
        for tr in self.css("#rows tr.pkg"):
            if tr.get_attribute("data-name") == name and \
                    (tr.get_attribute("data-group") or "") == group:
                return tr
        return None

    def group_row(self, group):
        for tr in self.css("#rows tr.group"):
            if tr.get_attribute("data-group") == group:
                return tr
        return None

    def click_in_row(self, tr, text):
        for button in tr.find_elements(By.TAG_NAME, "button"):
            if button.text == text:
                button.click()
                return
        raise AssertionError(f"no button {text!r} in row {tr.text!r}")

    def screenshot(self, path, scale=1.0):
        """The viewport as PNG; scale < 1 makes a smaller image (the README's)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if scale == 1.0:
            self.driver.save_screenshot(str(path))
            return
        size = self.driver.execute_script(
            "return [document.documentElement.clientWidth, window.innerHeight]")
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png",
            "clip": {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": scale}})
        Path(path).write_bytes(base64.b64decode(shot["data"]))
