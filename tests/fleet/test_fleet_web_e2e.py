"""End to end in a real browser: headless Chromium signs in, creates a unit, places a simulated terminal
(the real device code) in it, publishes a configuration, and sees the terminal report it applied; a
four-button terminal placed there rejects the five-face question and the registry shows why.

Everything is real: Mosquitto, the ingest, the fleet web on waitress, the terminals' sync agents.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select

from fleet.db.store import SqlFleetStore
from fleet.ingest import Ingest
from fleet.web.browser import CHROMIUM, chromium, page_url, sign_in, wait_replaced
from fleet.web.server import WebServer
from sim.terminals import SimTerminal

from .web import PASSWORD, Fleet, build_fleet

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(), reason="Debian's chromium is not installed")
WAIT_S = 30.0


@pytest.fixture
def world(mosquitto: Any, tmp_path: Path) -> Iterator[tuple[Fleet, str, dict[str, SimTerminal]]]:
    store = SqlFleetStore(tmp_path / "fleet.db")
    fleet = build_fleet(store)
    ingest = Ingest(SqlFleetStore(tmp_path / "fleet.db"), mosquitto.host, mosquitto.port)
    ingest.config_poll_s = 0.3
    ingest.start()
    server = WebServer(fleet.app, "127.0.0.1", 0)
    server.start()
    terminals = {
        name: SimTerminal(
            name,
            tmp_path / f"{name}.db",
            mosquitto.host,
            mosquitto.port,
            rng=random.Random(1),
            heartbeat_s=1.0,
            buttons=buttons,
        )
        for name, buttons in (("pi-touch", None), ("pi-four", 4))
    }
    for t in terminals.values():
        t.start()
    try:
        assert ingest.wait_ready(10)
        _until(lambda: all((s := store.terminal(n)) is not None and s.online for n in terminals), "terminals online")
        yield fleet, server.url, terminals
    finally:
        for t in terminals.values():
            t.stop()
        server.stop()
        ingest.stop()
        ingest.store.close()
        store.close()


@pytest.fixture
def driver() -> Iterator[WebDriver]:
    browser = chromium()
    try:
        yield browser
    finally:
        browser.quit()


def _until(check: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def _click(driver: WebDriver, element: Any) -> None:
    """Click and wait for the next page (a form's response) to replace this one."""
    page = driver.find_element(By.TAG_NAME, "html")
    element.click()
    wait_replaced(driver, page)


def _submit(driver: WebDriver, css: str) -> None:
    _click(driver, driver.find_element(By.CSS_SELECTOR, css))


def _page_shows(driver: WebDriver, url: str, text: str, terminal: SimTerminal | None = None) -> Callable[[], bool]:
    def check() -> bool:
        if terminal is not None:
            terminal.doc()  # a patient walks up: the terminal applies a pending configuration between presses
        driver.get(url)
        return text in driver.find_element(By.TAG_NAME, "main").text

    return check


def test_it_places_a_terminal_publishes_a_configuration_and_sees_it_applied_then_a_rejection(
    world: tuple[Fleet, str, dict[str, SimTerminal]], driver: WebDriver
) -> None:
    fleet, url, sims = world
    sign_in(driver, url, "admin", PASSWORD)
    # A unit, through its form.
    driver.get(page_url(url, f"/org/new?kind=unit&parent={fleet.area.id}"))
    driver.find_element(By.ID, "code").send_keys("e2e-unit")
    driver.find_element(By.ID, "name_fi").send_keys("Testiyksikkö")
    driver.find_element(By.ID, "name_en").send_keys("Test unit")
    Select(driver.find_element(By.ID, "service_type")).select_by_value("health_centre")
    _submit(driver, "main form input[type=submit]")
    assert driver.find_element(By.TAG_NAME, "h1").text.startswith("Test unit")
    unit_id = fleet.org.tree().by_code["e2e-unit"].id
    # Place the touch terminal there: it gets the national NPS question and says so.
    terminal_page = page_url(url, "/terminals/pi-touch")
    driver.get(terminal_page)
    Select(driver.find_element(By.ID, "unit")).select_by_value(str(unit_id))
    _click(driver, driver.find_element(By.XPATH, "//input[@value='Place the terminal']"))
    _until(_page_shows(driver, terminal_page, "version 1 applied", sims["pi-touch"]), "version 1 applied")
    # A five-face configuration, assigned to the unit and published.
    driver.get(page_url(url, "/configs/"))
    driver.find_element(By.ID, "name").send_keys("Viisi kasvoa")
    Select(driver.find_element(By.ID, "template")).select_by_value("faces5")
    _submit(driver, "main form input[type=submit]")
    set_page = driver.current_url
    driver.get(page_url(url, "/configs/assignments"))
    Select(driver.find_element(By.ID, f"n{unit_id}-set_id")).select_by_visible_text("Viisi kasvoa")
    _click(driver, driver.find_element(By.ID, f"n{unit_id}-set_id").find_element(By.XPATH, "./ancestor::form//button"))
    driver.get(set_page)
    _click(driver, driver.find_element(By.XPATH, "//button[normalize-space()='Publish version 1']"))
    assert "terminals get a new configuration" in driver.find_element(By.TAG_NAME, "main").text
    _until(_page_shows(driver, terminal_page, "version 2 applied", sims["pi-touch"]), "version 2 applied")
    assert sims["pi-touch"].doc()["question"]["scale"] == "faces5"  # type: ignore[index]
    # The four-button terminal placed in the same unit cannot show five faces: it says so.
    four_page = page_url(url, "/terminals/pi-four")
    driver.get(four_page)
    Select(driver.find_element(By.ID, "unit")).select_by_value(str(unit_id))
    _click(driver, driver.find_element(By.XPATH, "//input[@value='Place the terminal']"))
    reason = "scale faces5 has 5 answers but this terminal has 4 buttons"
    _until(_page_shows(driver, page_url(url, "/terminals?show=lagging"), reason), "the rejection in the registry")
    row = driver.find_element(By.XPATH, "//tr[th//a[text()='pi-four']]").text
    assert "rejected version 1" in row and reason in row
    assert sims["pi-four"].doc() is None  # it keeps showing "not yet placed" rather than a wrong scale
