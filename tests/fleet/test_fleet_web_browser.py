"""The fleet web in real headless Chromium against a real waitress server: WCAG 2.1 AA by axe-core on
every main page, keyboard-only use, a click-through of adding a unit and placing a terminal in it, and
the screenshots command."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fleet.web.browser import CHROMIUM, choose_language, chromium, page_url, sign_in, wait_replaced

if not CHROMIUM.is_file():
    pytest.skip(
        f"{CHROMIUM} is missing: install Debian's chromium and chromium-driver (bash tests/run.sh does)",
        allow_module_level=True,
    )

from axe_selenium_python import Axe  # noqa: E402
from selenium.webdriver.chrome.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

from fleet.db.accounts import Accounts  # noqa: E402
from fleet.db.feedback import Answer  # noqa: E402
from fleet.db.store import SqlFleetStore  # noqa: E402
from fleet.web.server import WebServer  # noqa: E402
from protocol import Heartbeat, TerminalState  # noqa: E402

from .web import PASSWORD, Fleet, build_fleet, store_votes  # noqa: E402

#: The WCAG 2.0 and 2.1 rules at levels A and AA, as the public sector must meet (laki digitaalisten
#: palvelujen tarjoamisesta 306/2019, EN 301 549).
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
#: A business ID with the wrong check digit (2048198 is valid): the form must say so.
BAD_OID = "1.2.246.10.2048197.10.1"
WAIT_S = 10.0


@dataclass
class Site:
    """The fleet web served by waitress on loopback, with the test organisation and two terminals."""

    url: str
    fleet: Fleet

    def at(self, page: str) -> str:
        return page_url(self.url, page)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One server for the module: starting Chromium and the app once keeps the file quick."""
    store = SqlFleetStore(tmp_path_factory.mktemp("browser") / "fleet.db")
    try:
        fleet = build_fleet(store)
        now = int(time.time() * 1000)
        store.record_state(TerminalState("pi-a11y", True, 1, now - 3_600_000, "1.0"), now - 3_600_000)
        fleet.org.place("test", "pi-a11y", fleet.unit.id)
        store.record_heartbeat(Heartbeat("pi-a11y", now, 3_600_000, "b1", True, 3600, 4, 120, 0, "1.0"), now)
        store.count_rejection("invalid", "pi-a11y", "vote 3: answer 12 is outside the scale nps11", now)
        store.record_state(TerminalState("pi-e2e", True, 1, now, "1.0"), now)
        # Answers over the last weeks, enough for every chart and table of the results pages.
        seen = [(now - (i % 20 + 1) * 86_400_000 - i * 60_000, (i * 7) % 11, {}) for i in range(120)]
        store_votes(fleet, "pi-a11y", "kaukajarvi", seen)
        service = fleet.app.extensions["hymy_feedback"]
        for lang, text in (("fi", "Odotin tunnin, mutta hoitaja oli ystävällinen."), ("en", "Parking was hard.")):
            service.records.add(Answer("kaukajarvi", None, lang, "thl-nps", "nps11", 6, "client", text))
        service.themes.assign_pending()
        server = WebServer(fleet.app, "127.0.0.1", 0)
        server.start()
        try:
            yield Site(server.url, fleet)
        finally:
            server.stop()
    finally:
        store.close()


@pytest.fixture(scope="module")
def driver(site: Site) -> Iterator[WebDriver]:
    """Headless Debian Chromium, quit whatever happens (and before the server stops: no open connections)."""
    browser = chromium()
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def anonymous(driver: WebDriver) -> WebDriver:
    """The browser signed out (no session cookie)."""
    driver.delete_all_cookies()
    return driver


def open_as_admin(driver: WebDriver, site: Site, page: str, lang: str | None = None) -> None:
    """Open ``page`` signed in as the administrator (signing in when the session is gone), in ``lang``."""
    driver.get(site.at(page))
    if driver.find_elements(By.CSS_SELECTOR, "main #username"):
        sign_in(driver, site.url, "admin", PASSWORD)
        driver.get(site.at(page))
    if lang is not None and driver.find_element(By.TAG_NAME, "html").get_attribute("lang") != lang:
        choose_language(driver, lang)


def axe_violations(driver: WebDriver, site: Site) -> list[dict[str, Any]]:
    """Run axe-core (injected by WebDriver, which the page's CSP does not govern) on the page shown."""
    Axe(driver).inject()  # reads axe.min.js shipped in the wheel: nothing is fetched
    # axe refuses a tag none of its rules carries: the axe-core 3.1 that axe-selenium-python 2.1 ships
    # (the last release for Python 3.11) has no rule tagged wcag21a yet, so ask for the tags it knows.
    # axe-selenium-python 3 (Python 3.12+) ships axe-core 4.10, which knows all four.
    tags = driver.execute_script("return arguments[0].filter(t => axe.getRules([t]).length > 0)", WCAG_TAGS)
    assert {"wcag2a", "wcag2aa", "wcag21aa"} <= set(tags), f"axe-core {axe_version(driver)} knows only {tags}"
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, arguments[0]).then(done, e => done({error: String(e)}));",
        {"runOnly": {"type": "tag", "values": tags}},
    )
    assert "error" not in result, result.get("error")
    fetched = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(u.startswith(site.url) for u in fetched), f"the page or axe fetched from elsewhere: {fetched}"
    violations: list[dict[str, Any]] = result["violations"]
    return violations


def axe_version(driver: WebDriver) -> str:
    """The version of the axe-core injected, for messages."""
    return str(driver.execute_script("return axe.version"))


def describe(violations: list[dict[str, Any]]) -> str:
    """Each violation's rule, impact and the offending elements, to fix from the failure message alone."""
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']}")
        for node in v["nodes"]:
            summary = " ".join((node.get("failureSummary") or "").split())
            lines.append(f"    {', '.join(map(str, node['target']))}: {summary}")
    return "\n".join(lines)


def assert_accessible(driver: WebDriver, site: Site) -> None:
    """No WCAG 2.1 A or AA violation on the page shown."""
    violations = axe_violations(driver, site)
    assert not violations, f"{driver.current_url}:\n{describe(violations)}"


def main_pages(site: Site) -> dict[str, str]:
    """Every page an administrator uses, by a name for the test id."""
    f = site.fleet
    viewer = next(a for a in f.accounts.all() if a.username == "viewer")
    month = time.strftime("%Y-%m", time.gmtime(time.time() - 10 * 86_400))  # the answers' month
    return {
        "overview": "/",
        "organisation": "/org/",
        "unit": f"/org/{f.unit.id}",
        "area": f"/org/{f.area.id}",
        "unit-edit": f"/org/{f.unit.id}/edit",
        "unit-new": f"/org/new?kind=unit&parent={f.area.id}",
        "terminals": "/terminals",
        "terminal": "/terminals/pi-a11y",
        "enrolment": "/enrolment/",
        "claim": "/claim/pi-a11y",
        "health": "/health",
        "accounts": "/accounts/",
        "account": f"/accounts/{viewer.id}",
        "audit": "/audit",
        "results-unit": f"/results/{f.unit.id}",
        "results-region": f"/results/{f.region.id}?period=week",
        "results-report": f"/results/{f.unit.id}/report?from={month}&to={month}",
        "texts-unit": f"/texts/{f.unit.id}",
    }


PAGE_NAMES = [
    "overview",
    "organisation",
    "unit",
    "area",
    "unit-edit",
    "unit-new",
    "terminals",
    "terminal",
    "enrolment",
    "claim",
    "health",
    "accounts",
    "account",
    "audit",
    "results-unit",
    "results-region",
    "results-report",
    "texts-unit",
]
#: The residents' pages, opened signed out.
PUBLIC_PAGES = ["/public/", "/public/pirkanmaa", "/public/kaukajarvi", "/public/kaukajarvi/widget"]


# -- accessibility -------------------------------------------------------------------------------


def test_csp_blocks_page_scripts_but_not_webdriver(anonymous: WebDriver, site: Site) -> None:
    """axe runs although the CSP forbids inline scripts: scripts WebDriver injects are not the page's."""
    anonymous.get(site.at("/login"))
    ran = anonymous.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.inlineRan = true;';"
        "document.head.appendChild(s); return window.inlineRan === true;"
    )
    assert ran is False, "the CSP should block an inline script the page itself adds"
    Axe(anonymous).inject()
    assert anonymous.execute_script("return typeof axe.run") == "function"


@pytest.mark.parametrize("name", PAGE_NAMES)
@pytest.mark.parametrize("lang", ["fi", "en"])
def test_page_meets_wcag_21_aa(driver: WebDriver, site: Site, name: str, lang: str) -> None:
    open_as_admin(driver, site, main_pages(site)[name], lang)
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == lang
    assert driver.find_elements(By.CSS_SELECTOR, "main h1"), f"{name}: no page heading (an error page?)"
    assert_accessible(driver, site)


@pytest.mark.parametrize("name", ["results-unit", "results-region", "results-report"])
def test_results_pages_meet_wcag_21_aa_in_swedish_too(driver: WebDriver, site: Site, name: str) -> None:
    open_as_admin(driver, site, main_pages(site)[name], "sv")
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "sv"
    assert_accessible(driver, site)


@pytest.mark.parametrize("page", PUBLIC_PAGES)
@pytest.mark.parametrize("lang", ["fi", "sv", "en"])
def test_public_page_meets_wcag_21_aa_signed_out(anonymous: WebDriver, site: Site, page: str, lang: str) -> None:
    anonymous.get(site.at(f"{page}?lang={lang}"))
    assert anonymous.find_element(By.TAG_NAME, "html").get_attribute("lang") == lang
    assert anonymous.find_elements(By.CSS_SELECTOR, "main h1"), f"{page}: no page heading"
    assert_accessible(anonymous, site)


@pytest.mark.parametrize("page", ["results-unit", "results-region", "results-report"])
def test_results_charts_are_drawn_from_the_pages_own_figures(driver: WebDriver, site: Site, page: str) -> None:
    """The vendored Chart.js loads under the CSP and draws each chart from the figures in the page."""
    open_as_admin(driver, site, main_pages(site)[page], "en")
    canvases = driver.find_elements(By.CSS_SELECTOR, "canvas[data-chart]")
    assert len(canvases) >= (1 if page == "results-report" else 3)
    drawn = driver.execute_script(
        "return arguments[0].map(c => { const ch = Chart.getChart(c);"
        " return ch ? ch.data.datasets[0].data.filter(v => v !== null).length : -1; });",
        canvases,
    )
    assert all(n > 0 for n in drawn), drawn


@pytest.mark.parametrize("lang", ["fi", "en"])
def test_login_page_meets_wcag_21_aa(anonymous: WebDriver, site: Site, lang: str) -> None:
    anonymous.get(site.at("/login"))
    choose_language(anonymous, lang)
    assert anonymous.find_element(By.ID, "username")
    assert_accessible(anonymous, site)


def test_form_with_errors_meets_wcag_21_aa(driver: WebDriver, site: Site) -> None:
    """The unit form after a bad OID: the summary and the marked field must be accessible too."""
    open_as_admin(driver, site, f"/org/new?kind=unit&parent={site.fleet.area.id}", "fi")
    driver.find_element(By.ID, "code").send_keys("bad-oid-unit")
    driver.find_element(By.ID, "name_fi").send_keys("Virheellinen yksikkö")
    driver.find_element(By.ID, "oid").send_keys(BAD_OID)
    submit(driver, driver.find_element(By.CSS_SELECTOR, "main input[type=submit]"))
    assert driver.find_elements(By.CSS_SELECTOR, ".error-summary[role=alert]")
    assert driver.find_element(By.ID, "oid").get_attribute("aria-invalid") == "true"
    assert driver.find_element(By.ID, "oid-help").find_elements(By.CLASS_NAME, "error")
    assert_accessible(driver, site)


# -- keyboard ------------------------------------------------------------------------------------


def press(driver: WebDriver, *keys: str) -> WebElement:
    """Press keys as a keyboard does (to whatever has focus); returns the element focused afterwards."""
    ActionChains(driver).send_keys(*keys).perform()
    return driver.switch_to.active_element


def tab_to(driver: WebDriver, found: Any, most: int = 40) -> WebElement:
    """Press Tab until ``found(focused element)`` holds; fails after ``most`` presses."""
    for _ in range(most):
        focused = press(driver, Keys.TAB)
        if found(focused):
            return focused
    raise AssertionError(f"no Tab stop matched in {most} presses")


def assert_skip_link_first(driver: WebDriver) -> None:
    """The first Tab stop is the skip link, shown on screen while it has focus."""
    first = press(driver, Keys.TAB)
    assert first.get_attribute("class") == "skip", first.get_attribute("outerHTML")
    assert (first.get_attribute("href") or "").endswith("#main")
    box = driver.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return [r.left, r.top, r.right, r.bottom, innerWidth, innerHeight];",
        first,
    )
    left, top, right, bottom, width, height = box
    assert 0 <= left < right <= width and 0 <= top < bottom <= height, f"skip link off screen when focused: {box}"
    assert first.is_displayed()


def test_keyboard_only_sign_in_and_navigation(anonymous: WebDriver, site: Site) -> None:
    driver = anonymous
    driver.get(site.at("/login"))
    assert_skip_link_first(driver)
    username = tab_to(driver, lambda e: e.get_attribute("id") == "username")
    username.send_keys("admin")
    assert press(driver, Keys.TAB).get_attribute("id") == "password"
    form = driver.find_element(By.CSS_SELECTOR, "main form")
    press(driver, *PASSWORD, Keys.ENTER)
    wait_replaced(driver, form)
    assert not driver.find_elements(By.ID, "username"), "still on the sign-in page"

    overview_h1 = driver.find_element(By.CSS_SELECTOR, "main h1")
    assert_skip_link_first(driver)
    terminals = tab_to(driver, lambda e: (e.get_attribute("href") or "").endswith("/terminals"))
    assert terminals.find_element(By.XPATH, "./ancestor::nav")  # the main menu's link, not a tile
    press(driver, Keys.ENTER)
    wait_replaced(driver, overview_h1)
    assert driver.current_url == site.at("/terminals")
    current = driver.find_element(By.CSS_SELECTOR, "nav a[aria-current=page]")
    assert (current.get_attribute("href") or "").endswith("/terminals")


def test_skip_link_moves_focus_to_the_content(driver: WebDriver, site: Site) -> None:
    open_as_admin(driver, site, "/terminals")
    assert_skip_link_first(driver)
    assert press(driver, Keys.ENTER).get_attribute("id") == "main"
    focused = press(driver, Keys.TAB)
    assert focused.find_elements(By.XPATH, "./ancestor::main"), "Tab after the skip link left the content"


# -- a click-through -----------------------------------------------------------------------------


def submit(driver: WebDriver, button: WebElement) -> None:
    """Click a form's button and wait for the page that answers it."""
    html = driver.find_element(By.TAG_NAME, "html")
    button.click()
    wait_replaced(driver, html)


def test_add_a_unit_and_place_a_terminal_in_it(driver: WebDriver, site: Site) -> None:
    f = site.fleet
    open_as_admin(driver, site, f"/org/{f.area.id}", "en")
    driver.find_element(By.CSS_SELECTOR, f"a[href$='/org/new?kind=unit&parent={f.area.id}']").click()
    WebDriverWait(driver, WAIT_S).until(expected_conditions.presence_of_element_located((By.ID, "code")))
    for field, text in {
        "code": "e2e-clinic",
        "name_fi": "E2E-klinikka",
        "name_sv": "E2E-kliniken",
        "name_en": "E2E clinic",
    }.items():
        driver.find_element(By.ID, field).send_keys(text)
    Select(driver.find_element(By.ID, "service_type")).select_by_value("child_health")
    submit(driver, driver.find_element(By.CSS_SELECTOR, "main input[type=submit]"))
    assert driver.find_element(By.CSS_SELECTOR, "main h1").text.startswith("E2E clinic")
    assert "e2e-clinic" in driver.find_element(By.CSS_SELECTOR, "dl.facts").text
    assert "Child health clinic" in driver.find_element(By.CSS_SELECTOR, "dl.facts").text

    driver.get(site.at("/terminals/pi-e2e"))
    unit = Select(driver.find_element(By.ID, "unit"))
    (option,) = [o for o in unit.options if o.text.startswith("E2E clinic (")]
    option.click()
    (place,) = driver.find_elements(By.CSS_SELECTOR, "form[action$='/pi-e2e/place'] input[type=submit]")
    assert place.get_attribute("value") == "Place the terminal"
    submit(driver, place)
    history = driver.find_element(By.CSS_SELECTOR, "section[aria-labelledby=history-heading] tbody tr")
    assert history.find_element(By.TAG_NAME, "td").text == "E2E clinic"
    config = f.store.get_config("pi-e2e")
    assert config is not None and config.doc["unit"] == "e2e-clinic"


# -- screenshots ---------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n"
SHOT_PAGES = [
    "index",
    "results-N",
    "public-REGION",
    "results-N",
    "public-UNIT",
    "public-UNIT-widget",
    "results-N-report",
    "texts-N",
    "f-UNIT",
    "alerts",
    "org",
    "org-N",
    "org-N-edit",
    "terminals",
    "terminals-DEVICE",
    "claim-DEVICE",
    "enrolment",
    "configs",
    "configs-N",
    "configs-assignments",
    "org-import",
    "health",
    "accounts",
    "audit",
]


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG), f"{path} is not a PNG"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 1000 and height >= 500, f"{path}: {width}x{height}"
    assert len(data) > 10_000, f"{path} is only {len(data)} bytes"


def test_screenshots_command_writes_every_page_in_every_language(tmp_path: Path) -> None:
    out = tmp_path / "shots"
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "fleet", "screenshots", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    printed = [Path(line) for line in done.stdout.splitlines()]
    assert sorted(printed) == sorted(out.iterdir())
    assert len(printed) == 3 * (len(SHOT_PAGES) + 1), printed
    for lang in ("fi", "sv", "en"):
        assert out / f"{lang}-login.png" in printed
        assert out / f"{lang}-terminals.png" in printed
    for path in printed:
        assert_png(path)


def test_screenshots_of_a_given_database_disable_their_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fleet.web import screens

    db = tmp_path / "fleet.db"
    with SqlFleetStore(db) as store:
        build_fleet(store)
    monkeypatch.setattr(screens, "main_pages", lambda store: ["/terminals", "/login"])  # the rest: test above
    written = screens.write_screenshots(tmp_path / "shots", str(db), languages=("en",))
    assert [p.name for p in written] == ["en-login.png", "en-terminals.png"]
    for path in written:
        assert_png(path)
    with SqlFleetStore(db) as store:
        made = [a for a in Accounts(store).all() if a.username.startswith("screenshots-")]
        assert len(made) == 1 and made[0].disabled and made[0].role == "admin"
