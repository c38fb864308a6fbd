"""The staff interface in Finnish, Swedish and English: every string in every catalog, numbers and
dates for the language, and the person's choice kept."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import pytest
from babel.messages.catalog import Message
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from fleet.web.i18n import TRANSLATIONS

from .conftest import NOON
from .web import Fleet, post_form

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "fleet" / "web"
LANGS = ("fi", "sv")


def _source_messages() -> set[str]:
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    keywords = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None, "ngettext": (1, 2)}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(str(WEB), method_map, keywords=keywords):
        found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.mark.parametrize("lang", LANGS)
def test_every_string_of_the_interface_is_translated(lang: str) -> None:
    with (TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f)
    # A plural entry's id is (singular, plural) and its strings one per plural form: all must be there.
    translated = {
        m.id if isinstance(m.id, str) else m.id[0]
        for m in catalog
        if m.id and (m.string if isinstance(m.string, str) else all(m.string)) and not m.fuzzy
    }
    missing = sorted(_source_messages() - translated)
    assert missing == [], f"{lang}: translate these (pybabel extract/update, see fleet/web/translations/README.md)"


@pytest.mark.parametrize("lang", LANGS)
def test_the_compiled_catalog_is_the_one_its_po_file_says(lang: str) -> None:
    folder = TRANSLATIONS / lang / "LC_MESSAGES"

    def pairs(messages: Iterable[Message]) -> dict[object, object]:
        return {
            m.id if isinstance(m.id, str) else tuple(m.id): m.string if isinstance(m.string, str) else tuple(m.string)
            for m in messages
            if m.id
        }

    with (folder / "messages.po").open("rb") as f:
        po = pairs(read_po(f))
    with (folder / "messages.mo").open("rb") as f:
        mo = pairs(read_mo(io.BytesIO(f.read())))
    assert mo == po, f"run: pybabel compile -d {TRANSLATIONS.relative_to(ROOT)}"


def test_a_page_speaks_the_language_the_person_chose_and_keeps_it(fleet_web: Fleet) -> None:
    viewer = fleet_web.client("viewer")
    assert "Overview" in viewer.get("/").get_data(as_text=True)
    post_form(viewer, "/language", {"lang": "sv", "next": "/org/"}, "/")
    page = viewer.get("/").get_data(as_text=True)
    assert 'lang="sv"' in page and "Översikt" in page
    again = fleet_web.client("viewer")  # a new session: the account remembers
    assert "Översikt" in again.get("/").get_data(as_text=True)


def test_an_anonymous_visitor_gets_the_browsers_language_or_finnish(fleet_web: Fleet) -> None:
    client = fleet_web.app.test_client()
    assert "Kirjaudu" in client.get("/login").get_data(as_text=True)
    swedish = client.get("/login", headers={"Accept-Language": "sv-FI,sv;q=0.9,en;q=0.5"}).get_data(as_text=True)
    assert "Logga in" in swedish


def test_numbers_and_times_are_written_for_the_language(fleet_web: Fleet) -> None:
    from protocol import Heartbeat, TerminalState

    fleet_web.store.record_state(TerminalState("pi-1", True, 1, NOON, "1.0"), NOON)
    fleet_web.store.record_heartbeat(Heartbeat("pi-1", NOON, 1, "b", True, 60, 1234, 60, 0, "1.0", 48.5, 20480), NOON)
    admin = fleet_web.client("admin")
    english = admin.get("/terminals").get_data(as_text=True)
    assert "48.5 °C" in english and "20,480 MiB" in english
    fleet_web.accounts.update("test", fleet_web.accounts.all()[0].id, lang="fi")
    finnish = admin.get("/terminals").get_data(as_text=True)
    assert "48,5 °C" in finnish and "20\xa0480 MiB" in finnish
    assert "1.3.2025" in finnish  # 2025-03-01 14:00 in Helsinki, written the Finnish way
