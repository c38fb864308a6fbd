"""The open-feedback form in real headless Chromium on a phone-sized screen, in each language, against
a real waitress server: filled in by touch targets, WCAG 2.1 AA by axe-core, and the answer found in
the unit's results under its own channel."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from fleet.web.browser import CHROMIUM, chromium, sign_in

if not CHROMIUM.is_file():
    pytest.skip(
        f"{CHROMIUM} is missing: install Debian's chromium and chromium-driver (bash tests/run.sh does)",
        allow_module_level=True,
    )

from selenium.webdriver.chrome.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

from fleet.db.store import SqlFleetStore  # noqa: E402
from fleet.web.server import WebServer  # noqa: E402

from .test_fleet_web_browser import Site, assert_accessible  # noqa: E402
from .web import PASSWORD, build_fleet  # noqa: E402

#: A phone held upright (CSS pixels of a common 6.1" phone).
PHONE = (390, 844)
WAIT_S = 10.0
TEXTS = {
    "fi": "Hoitaja oli ystävällinen, mutta jouduin odottamaan tunnin. Numeroni 040 765 4321.",
    "sv": "Trevlig personal men det var svårt att hitta parkering.",
    "en": "The doctor explained everything clearly. Thank you!",
}
QUESTION = {"fi": "Kuinka todennäköisesti", "sv": "Hur sannolikt", "en": "How likely"}
THANKS = {"fi": "Kiitos palautteestasi", "sv": "Tack för din respons", "en": "Thank you for your feedback"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    store = SqlFleetStore(tmp_path_factory.mktemp("form") / "fleet.db")
    try:
        fleet = build_fleet(store, staff_minimum=1)  # three answers: show their figure
        server = WebServer(fleet.app, "127.0.0.1", 0)
        server.start()
        try:
            yield Site(server.url, fleet)
        finally:
            server.stop()
    finally:
        store.close()


@pytest.fixture(scope="module")
def phone(site: Site) -> Iterator[WebDriver]:
    browser = chromium(*PHONE)
    try:
        yield browser
    finally:
        browser.quit()


def _fits(driver: WebDriver) -> None:
    """Nothing scrolls sideways on the phone (WCAG 1.4.10 reflow)."""
    wide = driver.execute_script("return document.documentElement.scrollWidth > window.innerWidth")
    assert not wide, f"{driver.current_url} scrolls sideways at {PHONE[0]} px"


@pytest.mark.parametrize("lang", ["fi", "sv", "en"])
def test_a_phone_fills_in_the_form_in_its_language_and_the_answer_reaches_the_results(
    phone: WebDriver, site: Site, lang: str
) -> None:
    phone.delete_all_cookies()
    phone.get(site.at(f"/f/kaukajarvi?lang={lang}"))
    assert phone.find_element(By.TAG_NAME, "html").get_attribute("lang") == lang
    assert QUESTION[lang] in phone.find_element(By.TAG_NAME, "legend").text
    assert_accessible(phone, site)
    _fits(phone)
    phone.find_element(By.CSS_SELECTOR, "label[for=answer-8]").click()  # touch the "8" target
    phone.find_element(By.CSS_SELECTOR, "label[for=role-client]").click()
    phone.find_element(By.ID, "text").send_keys(TEXTS[lang])
    phone.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(phone, WAIT_S).until(expected_conditions.url_contains("/thanks"))
    assert THANKS[lang] in phone.find_element(By.TAG_NAME, "h1").text
    assert_accessible(phone, site)
    cookies = [c["name"] for c in phone.get_cookies()]
    assert cookies == ["hymy_session"], cookies  # the CSRF token's session, nothing else
    records = site.fleet.app.extensions["hymy_feedback"].records
    stored = [t for t in records.texts(["kaukajarvi"], *_days()) if t.lang == lang]
    assert len(stored) == 1 and "040 765 4321" not in stored[0].text


def _days() -> tuple:
    from datetime import date, timedelta

    today = date.today()
    return today - timedelta(days=1), today + timedelta(days=1)


def test_a_mistake_is_explained_accessibly_and_keeps_what_was_written(phone: WebDriver, site: Site) -> None:
    phone.delete_all_cookies()
    phone.get(site.at("/f/kaukajarvi?lang=en"))
    phone.find_element(By.CSS_SELECTOR, "button[type=submit]").click()  # nothing chosen, nothing written
    summary = (By.CLASS_NAME, "error-summary")
    WebDriverWait(phone, WAIT_S).until(expected_conditions.presence_of_element_located(summary))
    assert "Choose an answer" in phone.find_element(By.CLASS_NAME, "error-summary").text
    assert_accessible(phone, site)
    _fits(phone)


def test_the_answers_appear_in_the_units_results_under_the_form_channel(phone: WebDriver, site: Site) -> None:
    # After the three languages' answers above (module order): a manager opens the unit's results.
    phone.delete_all_cookies()
    sign_in(phone, site.url, "manager", PASSWORD)
    phone.get(site.at(f"/results/{site.fleet.unit.id}?channel=web"))
    page = phone.find_element(By.TAG_NAME, "main").text
    assert "Feedback form (QR code)" in page
    assert phone.find_element(By.CSS_SELECTOR, "input[name=channel][value=web]").is_selected()
    headline = phone.find_element(By.CSS_SELECTOR, ".headline").text
    assert "3 answers" in headline, headline
    # The texts page: themes assigned by the built-in method (after the worker's round) and no phone number.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        phone.get(site.at(f"/texts/{site.fleet.unit.id}"))
        if "awaiting themes" not in phone.find_element(By.TAG_NAME, "main").text:
            break
        time.sleep(0.5)
    main = phone.find_element(By.TAG_NAME, "main").text
    assert "awaiting themes" not in main and "[PHONE]" in main and "040 765 4321" not in main
    assert_accessible(phone, site)
    _fits(phone)
