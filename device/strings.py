"""The interface texts a terminal ships for fi, sv and en, merged with a configuration's ``strings`` (SPEC 10.1).

A configuration may override any shipped text, and must supply every key for a language the
terminal does not ship (a Sámi language, say). ``protocol.configdoc`` holds which languages are
shipped and which keys a language needs, and its ``validate_config_doc`` refuses a document that
lacks one, on the fleet before it is published and here on receipt (``check_config``), so a
language is added without a software change and never half-shown. ``SHIPPED`` must hold every
key for exactly ``protocol.configdoc.SHIPPED_LANGUAGES`` (a test keeps them together).

Texts are data. Those written by the project and not yet checked by a native speaker are listed
in ``AWAITING_REVIEW``, as the default configuration lists its Swedish question under ``review``;
replacing one is a data change here. Faces are named worst first: a five-face scale uses
``face_0`` .. ``face_4``; a four-face scale (no middle face) uses ``face_0``, ``face_1``,
``face_3`` and ``face_4``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import protocol
from protocol.configdoc import UI_STRING_KEYS
from protocol.scales import SCALES

SHIPPED: Mapping[str, Mapping[str, str]] = {
    "fi": {
        "language_name": "Suomi",
        "thanks": "Kiitos!",
        "closed": "Olemme nyt suljettu. Voit antaa palautetta aukioloaikoina.",
        "opening_hours": "Aukioloajat",
        "not_placed": "Tätä päätettä ei ole vielä otettu käyttöön. Henkilökunta voi ottaa sen käyttöön QR-koodilla "
        "tai laitetunnuksella.",
        "unavailable": "Palautepääte on hetken poissa käytöstä.",
        "skip": "Ohita",
        "role_question": "Kuka vastaa?",
        "role_client": "Asiakas",
        "role_relative": "Omainen tai läheinen",
        "role_other": "Joku muu",
        "feedback_qr": "Kerro lisää: lue QR-koodi puhelimellasi",
        "nps_low": "En lainkaan todennäköisesti",
        "nps_high": "Erittäin todennäköisesti",
        "face_0": "Erittäin tyytymätön",
        "face_1": "Tyytymätön",
        "face_2": "Ei tyytyväinen eikä tyytymätön",
        "face_3": "Tyytyväinen",
        "face_4": "Erittäin tyytyväinen",
    },
    "sv": {
        "language_name": "Svenska",
        "thanks": "Tack!",
        "closed": "Vi har stängt nu. Du kan ge respons under öppettiderna.",
        "opening_hours": "Öppettider",
        "not_placed": "Den här terminalen har inte tagits i bruk ännu. Personalen kan ta den i bruk med QR-koden "
        "eller enhetens id.",
        "unavailable": "Responsterminalen är tillfälligt ur bruk.",
        "skip": "Hoppa över",
        "role_question": "Vem svarar?",
        "role_client": "Klient",
        "role_relative": "Anhörig eller närstående",
        "role_other": "Någon annan",
        "feedback_qr": "Berätta mer: skanna QR-koden med din telefon",
        "nps_low": "Inte alls sannolikt",
        "nps_high": "Mycket sannolikt",
        "face_0": "Mycket missnöjd",
        "face_1": "Missnöjd",
        "face_2": "Varken nöjd eller missnöjd",
        "face_3": "Nöjd",
        "face_4": "Mycket nöjd",
    },
    "en": {
        "language_name": "English",
        "thanks": "Thank you!",
        "closed": "We are closed now. You can give feedback during opening hours.",
        "opening_hours": "Opening hours",
        "not_placed": "This terminal has not been placed yet. Staff can set it up with the QR code or the device id.",
        "unavailable": "This feedback terminal is out of use for a moment.",
        "skip": "Skip",
        "role_question": "Who is answering?",
        "role_client": "Client",
        "role_relative": "Family member or close person",
        "role_other": "Someone else",
        "feedback_qr": "Tell us more: scan the QR code with your phone",
        "nps_low": "Not at all likely",
        "nps_high": "Extremely likely",
        "face_0": "Very dissatisfied",
        "face_1": "Dissatisfied",
        "face_2": "Neither satisfied nor dissatisfied",
        "face_3": "Satisfied",
        "face_4": "Very satisfied",
    },
}

#: The notice a terminal shows while it enrols (device/enrolling.py). Not part of ``SHIPPED``: a
#: configuration can never override it, since no configuration exists before enrolment. The fi and
#: sv texts await a native speaker's review.
ENROLLING: Mapping[str, str] = {
    "fi": "Tätä päätettä liitetään palautepalveluun. Se on valmis, kun tietohallinto on hyväksynyt sen.",
    "sv": "Terminalen ansluts till responstjänsten. Den är klar när IT har godkänt den.",
    "en": "This terminal is joining the feedback service. It is ready once IT has approved it.",
}

#: Shipped texts the project wrote that await a native speaker's review (all but the certain ones).
AWAITING_REVIEW: Mapping[str, frozenset[str]] = {
    "fi": UI_STRING_KEYS - {"language_name", "thanks"},
    "sv": UI_STRING_KEYS - {"language_name", "thanks"},
}

#: Where a key is missing from a language (only a configuration that skipped ``check_config`` can
#: cause that), the screen falls back to this language rather than showing nothing.
FALLBACK_LANGUAGE = "en"


def _overrides(doc: Mapping[str, Any] | None, lang: str) -> Mapping[str, str]:
    if doc is None:
        return {}
    strings: Mapping[str, Mapping[str, str]] = doc.get("strings") or {}
    return strings.get(lang, {})


def texts_for(lang: str, doc: Mapping[str, Any] | None) -> dict[str, str]:
    """Every interface text for ``lang``: the configuration's ``strings`` over the shipped ones.

    ``doc`` None (an unplaced terminal) gives the shipped texts. Never raises for a gap: a key no
    source has falls back to the shipped English text, so the screen always has words.
    """
    texts = dict(SHIPPED[FALLBACK_LANGUAGE])
    texts.update(SHIPPED.get(lang, {}))
    texts.update(_overrides(doc, lang))
    return texts


def check_config(version: int, doc: dict[str, Any]) -> str | None:
    """Why this terminal cannot run the configuration, or None if it can: the fleet's own check, run on receipt.

    ``protocol.validate_config_doc`` covers shape, time zone, dates and the texts of unshipped
    languages, so the fleet refuses the same documents before it publishes them.
    """
    try:
        protocol.validate_config_doc(doc)
    except protocol.ProtocolError as exc:
        return str(exc)
    return None


def check_config_for(buttons: int | None) -> Callable[[int, dict[str, Any]], str | None]:
    """``check_config`` for a terminal with ``buttons`` physical buttons (None: a touch screen, any scale).

    A four-button terminal must refuse an eleven-answer NPS question: its presses would land on
    answers 0..3 and every one would count as a detractor.
    """

    def check(version: int, doc: dict[str, Any]) -> str | None:
        reason = check_config(version, doc)
        if reason is None and buttons is not None:
            scale = doc["question"]["scale"]
            if SCALES[scale].size != buttons:
                return f"scale {scale} has {SCALES[scale].size} answers but this terminal has {buttons} buttons"
        return reason

    return check
