"""The fleet web in a real browser: headless Debian Chromium, for the accessibility tests and screenshots.

Debian's chromium and chromium-driver are used as installed, so nothing is downloaded at run time
(Selenium Manager is never asked: the driver's path is given).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from pathlib import Path

from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
#: Headless, and quiet: no sandbox (containers, root), no GPU, no update checks or other traffic of its own.
ARGUMENTS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking")
#: Seconds to wait for a page to follow a form.
WAIT_S = 10.0
#: The page that is shot signed out (signed in, it would show the staff header over the form).
LOGIN = "/login"


def chromium(width: int = 1280, height: int = 900) -> WebDriver:
    """Headless Debian Chromium with a fixed window, so that runs and screenshots compare across machines."""
    for binary, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not binary.is_file():
            raise RuntimeError(f"{binary} is missing: install Debian's {package} (apt-get install {package})")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in (*ARGUMENTS, f"--window-size={width},{height}"):
        options.add_argument(argument)
    return WebDriver(options=options, service=Service(str(CHROMEDRIVER)))


def wait_replaced(driver: WebDriver, element: WebElement, timeout: float = WAIT_S) -> None:
    """Wait until ``element`` has left the page (the next page has replaced it).

    Chromium answers a question about a node of the page being unloaded either "stale element" or
    "Node with given id does not belong to the document", depending on when it is asked; both
    mean the old page is gone, so both end the wait (Selenium's staleness_of knows only the first).
    """

    def gone(_: WebDriver) -> bool:
        try:
            element.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return True
            raise
        return False

    WebDriverWait(driver, timeout).until(gone)


def page_url(base_url: str, page: str) -> str:
    """``page`` (a path such as /terminals) on the server at ``base_url``."""
    return base_url.rstrip("/") + "/" + page.lstrip("/")


def sign_in(driver: WebDriver, base_url: str, username: str, password: str) -> None:
    """Sign in through the login form, as a person does, so the session and its CSRF token are real."""
    driver.get(page_url(base_url, LOGIN))
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    form = driver.find_element(By.TAG_NAME, "form")
    driver.find_element(By.CSS_SELECTOR, "main input[type=submit]").click()
    wait_replaced(driver, form)
    if driver.find_elements(By.ID, "username"):
        raise RuntimeError(f"could not sign in as {username!r} at {base_url}")


def choose_language(driver: WebDriver, code: str) -> None:
    """Switch the language with the header's form, which also keeps it on a signed-in account."""
    html = driver.find_element(By.TAG_NAME, "html")
    if html.get_attribute("lang") == code:
        return
    Select(driver.find_element(By.ID, "lang-choice")).select_by_value(code)
    driver.find_element(By.CSS_SELECTOR, "header form:has(#lang-choice) button[type=submit]").click()
    wait_replaced(driver, html)
    shown = driver.find_element(By.TAG_NAME, "html").get_attribute("lang")
    if shown != code:
        raise RuntimeError(f"the page is in {shown!r} after choosing {code!r}")


def full_page_png(driver: WebDriver) -> bytes:
    """The whole page as PNG, not just the window: a long table is judged by its end too."""
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    content, viewport = metrics["cssContentSize"], metrics["cssLayoutViewport"]
    clip = {
        "x": 0,
        "y": 0,
        "width": max(content["width"], viewport["clientWidth"]),
        "height": max(content["height"], viewport["clientHeight"]),
        "scale": 1,
    }
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    return base64.b64decode(shot["data"])


def file_stem(page: str) -> str:
    """A safe file name for a page's path: /org/3/edit gives org-3-edit, / gives index."""
    return re.sub(r"[^a-z0-9]+", "-", page.lower()).strip("-") or "index"


def take_screenshots(
    base_url: str,
    username: str,
    password: str,
    out_dir: Path,
    pages: Sequence[str],
    languages: Sequence[str] = ("fi", "sv", "en"),
) -> list[Path]:
    """Full-page PNGs of ``pages`` in each language (``fi-terminals.png``), for reviewing the web as people see it.

    The login page is shot signed out; every other page signed in as ``username``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    stems: dict[str, str] = {}
    for page in pages:
        stem, n = file_stem(page), 2
        while stem in stems.values():
            stem, n = f"{file_stem(page)}-{n}", n + 1
        stems[page] = stem
    written: list[Path] = []
    driver = chromium()
    try:

        def shoot(lang: str, page: str) -> None:
            driver.get(page_url(base_url, page))
            path = out_dir / f"{lang}-{stems[page]}.png"
            path.write_bytes(full_page_png(driver))
            written.append(path)

        signed_out = [p for p in pages if p == LOGIN]
        for lang in languages if signed_out else ():
            driver.get(page_url(base_url, LOGIN))
            choose_language(driver, lang)
            for page in signed_out:
                shoot(lang, page)
        signed_in = [p for p in pages if p != LOGIN]
        if signed_in:
            sign_in(driver, base_url, username, password)
            for lang in languages:
                choose_language(driver, lang)
                for page in signed_in:
                    shoot(lang, page)
    finally:
        driver.quit()
    return written
