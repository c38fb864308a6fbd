"""Building each screen's view from the configuration in force, the language in use and the texts.

The one place that reads the configuration document for display, so screens stay pure drawing
and a new language or question arriving as configuration needs no code change.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import protocol
from device.hours import HoursError, next_opening
from device.strings import ENROLLING, SHIPPED, texts_for

from .hours_text import moment, weekly_lines
from .views import ROLES, ChoiceView, ClosedView, NoticeView, QuestionView, Switcher, ThanksView

#: Face label keys per face scale, worst first (a four-face scale has no middle face).
FACE_KEYS: dict[int, tuple[str, ...]] = {
    4: ("face_0", "face_1", "face_3", "face_4"),
    5: ("face_0", "face_1", "face_2", "face_3", "face_4"),
}


def switcher(doc: Mapping[str, Any], lang: str) -> Switcher:
    """The offered languages with their names in themselves, from the texts (shipped or configured)."""
    return Switcher(tuple((tag, texts_for(tag, doc)["language_name"]) for tag in doc["languages"]), lang)


def question_view(doc: Mapping[str, Any], lang: str) -> QuestionView:
    """The question in ``lang`` with the labels its scale needs."""
    texts = texts_for(lang, doc)
    question = doc["question"]
    scale = protocol.SCALES[question["scale"]]
    if scale.is_nps:
        labels: tuple[str, ...] = (texts["nps_low"], texts["nps_high"])
    else:
        labels = tuple(texts[k] for k in FACE_KEYS.get(scale.size, FACE_KEYS[5]))
    return QuestionView(switcher(doc, lang), question["text"][lang], question["scale"], labels)


def followup_branch(doc: Mapping[str, Any], answer: int) -> dict[str, Any] | None:
    """The follow-up branch whose answers include ``answer``, or None (no follow-up for it)."""
    followup = protocol.setting(dict(doc), "followup")
    if followup is None:
        return None
    for branch in followup["branches"]:
        if answer in branch["answers"]:
            return dict(branch)
    return None


def followup_view(doc: Mapping[str, Any], branch: Mapping[str, Any], lang: str) -> ChoiceView:
    """The branch's question and choices in ``lang``, with a skip button."""
    choices = tuple((c["id"], c["text"][lang]) for c in branch["choices"])
    return ChoiceView("followup", branch["question"][lang], choices, texts_for(lang, doc)["skip"])


def role_view(doc: Mapping[str, Any], lang: str) -> ChoiceView:
    """Who is answering: client, relative or other, with a skip button."""
    texts = texts_for(lang, doc)
    return ChoiceView("role", texts["role_question"], tuple((r, texts[f"role_{r}"]) for r in ROLES), texts["skip"])


def thanks_view(doc: Mapping[str, Any], lang: str) -> ThanksView:
    """Thanks, and the open-feedback QR code when the unit has a feedback address."""
    texts = texts_for(lang, doc)
    url = protocol.setting(dict(doc), "feedback_url")
    return ThanksView(texts["thanks"], url, texts["feedback_qr"] if url else "")


def closed_view(doc: Mapping[str, Any], lang: str, now: datetime) -> ClosedView:
    """Closed notice, weekly hours and the next opening, in ``lang`` and the hours' time zone."""
    texts = texts_for(lang, doc)
    hours = protocol.setting(dict(doc), "hours") or {"tz": "UTC", "weekly": {}}
    fallbacks = list(doc["languages"])
    try:
        opening = next_opening(hours, now)
    except HoursError:
        opening = None
    nxt = f"→ {moment(opening, lang, fallbacks)}" if opening is not None else None
    return ClosedView(
        switcher(doc, lang), texts["closed"], texts["opening_hours"], tuple(weekly_lines(hours, lang, fallbacks)), nxt
    )


def notice_messages(key: str, doc: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """A notice in every language the terminal can: the configuration's, else the shipped ones."""
    langs = list(doc["languages"]) if doc else list(SHIPPED)
    return tuple(dict.fromkeys(texts_for(lang, doc)[key] for lang in langs))


def claim_data(device_id: str, claim_base: str | None = None) -> str:
    """What the claim QR code encodes: ``<claim_base><id>`` when a base URL is set, else ``hymy:claim:<id>``."""
    return f"{claim_base}{device_id}" if claim_base else f"hymy:claim:{device_id}"


def unplaced_view(device_id: str, claim_base: str | None = None) -> NoticeView:
    """Not placed yet: the shipped languages' notices, the device id and the claim QR code."""
    return NoticeView("unplaced", notice_messages("not_placed"), device_id, claim_data(device_id, claim_base))


def unavailable_view(device_id: str, doc: Mapping[str, Any] | None = None) -> NoticeView:
    """A calm out-of-use notice, with the device id small for staff."""
    return NoticeView("unavailable", notice_messages("unavailable", doc), device_id)


def enrolling_view(caption: str, fleet_url: str | None = None, request: str | None = None) -> NoticeView:
    """Enrolling: the notice in fi, sv and en, the id staff see in the fleet, and once the fleet has the
    request, a QR code of its approval page ``<fleet_url>enrolment/request/<request>``."""
    qr = f"{fleet_url}enrolment/request/{request}" if fleet_url and request else None
    return NoticeView("enrolling", tuple(ENROLLING[lang] for lang in SHIPPED), caption, qr)
