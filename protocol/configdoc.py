"""The configuration document a terminal runs: question, scale, languages and pacing.

It is versioned by the ``config`` message that carries it. ``validate_config_doc`` is the one
check both sides run: the fleet before it stores or publishes a document, the terminal when one
arrives. It covers everything a terminal needs to run the document (the time zone exists, a
language terminals do not ship brings all its interface texts, dates and times are real), so
the fleet refuses to publish what a terminal would reject and a terminal can say exactly why it
rejected one. New keys come with a new schema version.
"""

from __future__ import annotations

import functools
import math
import re
import zoneinfo
from collections.abc import Mapping
from datetime import date
from typing import Any

from .errors import ProtocolError
from .limits import MAX_ID, MAX_LANGUAGES, MAX_QUESTION_TEXT, MAX_SOURCE_TEXT, MAX_UI_TEXT, MAX_URL
from .scales import SCALES

# ``\Z`` rather than ``$``, which would also match before a trailing newline.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}\Z")
_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{1,8})?\Z")

DOC_REQUIRED = frozenset({"unit", "languages", "default_language", "question"})
DOC_OPTIONAL = frozenset(
    {"misuse_interval_s", "thanks_s", "hours", "followup", "role_question", "strings", "feedback_url", "display"}
)
QUESTION_REQUIRED = frozenset({"id", "scale", "text"})
QUESTION_OPTIONAL = frozenset({"sources", "review"})

#: Defaults for optional keys, so every reader applies the same ones.
DEFAULTS: dict[str, Any] = {
    "misuse_interval_s": 2.0,
    "thanks_s": 5.0,
    "hours": None,  # always open
    "followup": None,  # no follow-up question
    "role_question": False,
    "strings": {},
    "feedback_url": None,
    "display": {"brightness": 100, "sleep_after_s": 0},
}

#: Days of the week in ``hours.weekly``, Monday first as in ISO 8601.
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Languages every terminal ships all its interface texts for (SPEC 10.1); ``device/strings.py`` holds them.
SHIPPED_LANGUAGES = ("fi", "sv", "en")
#: Keys of the terminal's own interface texts that ``strings`` may set per language. A terminal
#: ships them for SHIPPED_LANGUAGES; any other language (a Sámi one, say) arrives with all of
#: these in ``strings``.
UI_STRING_KEYS = frozenset(
    {
        "language_name",  # the language's name in itself, on the switcher: "Suomi"
        "thanks",
        "closed",  # out-of-hours screen
        "opening_hours",
        "not_placed",
        "unavailable",  # the calm screen when there is no valid configuration
        "skip",
        "role_question",
        "role_client",
        "role_relative",
        "role_other",
        "feedback_qr",  # caption beside the open-feedback QR code
        "nps_low",  # label under 0 on the NPS scale: "not at all likely"
        "nps_high",  # label under 10: "extremely likely"
        "face_0",  # accessible names of the faces, worst first
        "face_1",
        "face_2",
        "face_3",
        "face_4",
    }
)
_TZ = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}\Z")
# ASCII classes, never ``\d``: in a str pattern ``\d`` also matches Arabic-Indic and other digits.
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]\Z|^24:00\Z")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
#: Names in the tz directory that are host artefacts, not places: never a unit's zone.
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*\Z")


def _is_utf8(text: str) -> bool:
    """False for text holding lone surrogates (JSON ``"\\ud800"``), which UTF-8 cannot carry."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _shown(value: Any) -> str:
    """``repr`` of an offending value, short enough for a rejection reason (and safe on a huge int)."""
    try:
        text = repr(value)
    except ValueError:  # an int past Python's digit limit
        return "a huge number"
    return text if len(text) <= 40 else text[:37] + "..."


def _bad(detail: str) -> ProtocolError:
    return ProtocolError("invalid", f"configuration: {detail}")


def _keys(obj: Any, required: frozenset[str], optional: frozenset[str], what: str) -> dict[str, Any]:
    if type(obj) is not dict:
        raise _bad(f"{what} must be an object")
    missing = required - obj.keys()
    if missing:
        raise _bad(f"{what} lacks {sorted(missing)}")
    extra = obj.keys() - required - optional
    if extra:
        raise _bad(f"{what} has unknown keys {sorted(extra)}")
    return obj


def _number(obj: dict[str, Any], key: str, lo: int, hi: int, where: str = "") -> None:
    """A JSON number (integer or fraction, finite) in lo..hi; never a boolean or a string."""
    if key in obj:
        v = obj[key]
        # The range test comes first: math.isfinite raises OverflowError on a huge integer.
        if type(v) not in (int, float) or not lo <= v <= hi or not math.isfinite(v):
            raise _bad(f"{where}{key} must be a number in {lo}..{hi}, got {_shown(v)}")


def _integer(obj: dict[str, Any], key: str, lo: int, hi: int, where: str = "") -> None:
    """A JSON integer (no fraction: ``80.0`` is not one) in lo..hi; never a boolean or a string."""
    if key in obj:
        v = obj[key]
        if type(v) is not int or not lo <= v <= hi:
            raise _bad(f"{where}{key} must be an integer in {lo}..{hi}, got {_shown(v)}")


def _lang_map(obj: Any, what: str, limit: int) -> dict[str, str]:
    if type(obj) is not dict:
        raise _bad(f"{what} must map language tags to text")
    for lang, text in obj.items():
        if type(lang) is not str or not _LANG.match(lang):
            raise _bad(f"{what} has a bad language tag {lang!r}")
        if type(text) is not str or not text.strip() or len(text) > limit or not _is_utf8(text):
            raise _bad(f"{what}[{lang}] must be 1..{limit} characters of text")
    return obj


def validate_config_doc(doc: Any) -> dict[str, Any]:
    """Return ``doc`` if it is a valid configuration document, else raise ProtocolError."""
    _keys(doc, DOC_REQUIRED, DOC_OPTIONAL, "document")
    unit = doc["unit"]
    if unit is not None and (type(unit) is not str or not _ID.match(unit)):
        raise _bad(f"unit must be an identifier or null, got {unit!r}")
    langs = doc["languages"]
    if (
        type(langs) is not list
        or not 1 <= len(langs) <= MAX_LANGUAGES
        or not all(type(lang) is str and _LANG.match(lang) for lang in langs)
        or len(set(langs)) != len(langs)
    ):
        raise _bad(f"languages must be 1..{MAX_LANGUAGES} distinct language tags")
    if type(doc["default_language"]) is not str or doc["default_language"] not in langs:
        raise _bad("default_language must be one of languages")
    q = _keys(doc["question"], QUESTION_REQUIRED, QUESTION_OPTIONAL, "question")
    if type(q["id"]) is not str or not _ID.match(q["id"]):
        raise _bad(f"question id must be an identifier, got {q['id']!r}")
    if type(q["scale"]) is not str or q["scale"] not in SCALES:
        raise _bad(f"unknown scale {q['scale']!r}; known: {sorted(SCALES)}")
    text = _lang_map(q["text"], "question text", MAX_QUESTION_TEXT)
    missing = [lang for lang in langs if lang not in text]
    if missing:
        raise _bad(f"question text lacks languages {missing}")
    if "sources" in q:
        _lang_map(q["sources"], "question sources", MAX_SOURCE_TEXT)
    if "review" in q:
        review = q["review"]
        if type(review) is not list or not all(type(lang) is str and lang in text for lang in review):
            raise _bad("review must list languages of the question text awaiting review")
    _number(doc, "misuse_interval_s", 0, 3600)
    _number(doc, "thanks_s", 1, 120)
    if doc.get("hours") is not None:
        _hours(doc["hours"])
    if doc.get("followup") is not None:
        _followup(doc["followup"], SCALES[q["scale"]].size, langs)
    if "role_question" in doc and type(doc["role_question"]) is not bool:
        raise _bad("role_question must be true or false")
    if "strings" in doc:
        _strings(doc["strings"])
    lacking = missing_strings(doc)
    if lacking:
        lang, keys = next(iter(lacking.items()))
        raise _bad(
            f"strings.{lang} must supply every interface text, as terminals ship them only for"
            f" {', '.join(SHIPPED_LANGUAGES)} (missing {lang}: {', '.join(keys)})"
        )
    url = doc.get("feedback_url")
    if url is not None and (type(url) is not str or len(url) > MAX_URL or not _URL.match(url)):
        raise _bad(f"feedback_url must be an http(s) address of at most {MAX_URL} characters")
    if "display" in doc:
        display = _keys(doc["display"], frozenset(), frozenset({"brightness", "sleep_after_s"}), "display")
        _integer(display, "brightness", 0, 100, "display.")
        _integer(display, "sleep_after_s", 0, 86400, "display.")
    return doc


def missing_strings(doc: Mapping[str, Any]) -> dict[str, list[str]]:
    """Per offered language not in SHIPPED_LANGUAGES, the interface texts ``strings`` lacks; empty if none."""
    strings = doc.get("strings") or {}
    missing: dict[str, list[str]] = {}
    for lang in doc["languages"]:
        if lang in SHIPPED_LANGUAGES:
            continue
        have = strings.get(lang) or {}
        lacking = sorted(UI_STRING_KEYS - have.keys())
        if lacking:
            missing[lang] = lacking
    return missing


@functools.cache
def _zones() -> frozenset[str]:
    """The IANA keys this host's tz database (or the tzdata package) holds; read once, as data."""
    return frozenset(zoneinfo.available_timezones()) - _NOT_ZONES


def known_time_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone key this side's tz database holds (never a file path)."""
    return bool(_TZ.match(name)) and len(name) <= MAX_ID and name in _zones()


def _minutes(hhmm: Any, what: str, closing: bool) -> int:
    """Minutes after midnight of an ASCII ``HH:MM``; ``24:00`` (the end of the day) only as a closing time."""
    if type(hhmm) is not str or not _HHMM.match(hhmm) or (hhmm == "24:00" and not closing):
        which, last = ("closing", "24:00") if closing else ("opening", "23:59")
        raise _bad(f"{what} {which} time must be HH:MM in 00:00..{last}, got {_shown(hhmm)}")
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _hours(hours: Any) -> None:
    """Opening hours: a time zone and, per weekday, up to four non-overlapping [open, close) intervals."""
    _keys(hours, frozenset({"tz", "weekly"}), frozenset({"closed_dates"}), "hours")
    if type(hours["tz"]) is not str or not known_time_zone(hours["tz"]):
        raise _bad(f"hours.tz must be an IANA time zone name such as Europe/Helsinki, got {_shown(hours['tz'])}")
    weekly = _keys(hours["weekly"], frozenset(), frozenset(WEEKDAYS), "hours.weekly")
    for day, intervals in weekly.items():
        if type(intervals) is not list or len(intervals) > 4:
            raise _bad(f"hours.weekly.{day} must be a list of at most 4 [open, close] pairs")
        last_close = -1
        for pair in intervals:
            if type(pair) is not list or len(pair) != 2:
                raise _bad(f"hours.weekly.{day} must hold [open, close] pairs")
            start = _minutes(pair[0], f"hours.weekly.{day}", closing=False)
            end = _minutes(pair[1], f"hours.weekly.{day}", closing=True)
            if not last_close <= start < end:
                raise _bad(f"hours.weekly.{day} intervals must be in order, each opening before it closes")
            last_close = end
    closed = hours.get("closed_dates", [])
    if type(closed) is not list or len(closed) > 366:
        raise _bad("hours.closed_dates must be a list of at most 366 dates YYYY-MM-DD")
    for i, day in enumerate(closed):
        if not _is_date(day):
            raise _bad(f"hours.closed_dates[{i}] must be a calendar date YYYY-MM-DD in ASCII digits, got {_shown(day)}")


def _is_date(text: Any) -> bool:
    """An ASCII ``YYYY-MM-DD`` naming a day that exists (no 2024-02-30)."""
    if type(text) is not str or not _DATE.match(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _followup(followup: Any, scale_size: int, langs: list[str]) -> None:
    """A follow-up after the score: branches by answer, each a question with 1..8 choices."""
    _keys(followup, frozenset({"branches"}), frozenset({"timeout_s"}), "followup")
    _integer(followup, "timeout_s", 3, 300, "followup.")
    branches = followup["branches"]
    if type(branches) is not list or not 1 <= len(branches) <= 4:
        raise _bad("followup.branches must be a list of 1..4 branches")
    covered: set[int] = set()
    for i, branch in enumerate(branches):
        what = f"followup.branches[{i}]"
        _keys(branch, frozenset({"answers", "question", "choices"}), frozenset(), what)
        answers = branch["answers"]
        if (
            type(answers) is not list
            or not answers
            or not all(type(a) is int and 0 <= a < scale_size for a in answers)
            or len(set(answers)) != len(answers)
        ):
            raise _bad(f"{what}.answers must list distinct answers of the scale (0..{scale_size - 1})")
        if covered & set(answers):
            raise _bad(f"{what}.answers overlaps an earlier branch")
        covered |= set(answers)
        _covers(_lang_map(branch["question"], f"{what}.question", MAX_QUESTION_TEXT), langs, f"{what}.question")
        choices = branch["choices"]
        if type(choices) is not list or not 1 <= len(choices) <= 8:
            raise _bad(f"{what}.choices must be a list of 1..8 choices")
        ids = set()
        for j, choice in enumerate(choices):
            _keys(choice, frozenset({"id", "text"}), frozenset(), f"{what}.choices[{j}]")
            if type(choice["id"]) is not str or not _ID.match(choice["id"]) or choice["id"] in ids:
                raise _bad(f"{what}.choices[{j}].id must be a distinct identifier")
            ids.add(choice["id"])
            _covers(_lang_map(choice["text"], f"{what}.choices[{j}].text", MAX_UI_TEXT), langs, f"{what}.choices")


def _covers(texts: dict[str, str], langs: list[str], what: str) -> None:
    missing = [lang for lang in langs if lang not in texts]
    if missing:
        raise _bad(f"{what} lacks languages {missing}")


def _strings(strings: Any) -> None:
    """Interface texts per language; only known keys, each 1..MAX_UI_TEXT characters."""
    if type(strings) is not dict or len(strings) > MAX_LANGUAGES:
        raise _bad("strings must map at most 16 language tags to interface texts")
    for lang, texts in strings.items():
        if type(lang) is not str or not _LANG.match(lang):
            raise _bad(f"strings has a bad language tag {lang!r}")
        _keys(texts, frozenset(), UI_STRING_KEYS, f"strings.{lang}")
        for key, text in texts.items():
            if type(text) is not str or not text.strip() or len(text) > MAX_UI_TEXT or not _is_utf8(text):
                raise _bad(f"strings.{lang}.{key} must be 1..{MAX_UI_TEXT} characters of text")


def setting(doc: dict[str, Any], key: str) -> Any:
    """An optional setting of ``doc``, or its shipped default."""
    return doc.get(key, DEFAULTS[key])
