"""The configuration document a terminal runs: question, scale, languages and pacing.

It is versioned by the ``config`` message that carries it; this module only checks its
shape, so the fleet refuses to publish what a terminal would reject and a terminal can say
exactly why it rejected one. New keys come with a new schema version.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .errors import ProtocolError
from .limits import MAX_LANGUAGES, MAX_QUESTION_TEXT, MAX_SOURCE_TEXT
from .scales import SCALES

# ``\Z`` rather than ``$``, which would also match before a trailing newline.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}\Z")
_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{1,8})?\Z")

DOC_REQUIRED = frozenset({"unit", "languages", "default_language", "question"})
DOC_OPTIONAL = frozenset({"misuse_interval_s", "thanks_s"})
QUESTION_REQUIRED = frozenset({"id", "scale", "text"})
QUESTION_OPTIONAL = frozenset({"sources", "review"})

#: Defaults for optional keys, so every reader applies the same ones.
DEFAULTS: dict[str, Any] = {"misuse_interval_s": 2.0, "thanks_s": 5.0}


def _is_utf8(text: str) -> bool:
    """False for text holding lone surrogates (JSON ``"\\ud800"``), which UTF-8 cannot carry."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


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


def _number(doc: dict[str, Any], key: str, lo: float, hi: float) -> None:
    if key in doc:
        v = doc[key]
        # The range test comes first: math.isfinite raises OverflowError on a huge integer.
        if type(v) not in (int, float) or not lo <= v <= hi or not math.isfinite(v):
            raise _bad(f"{key} must be a number in {lo}..{hi}")


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
    return doc


def setting(doc: dict[str, Any], key: str) -> Any:
    """An optional setting of ``doc``, or its shipped default."""
    return doc.get(key, DEFAULTS[key])
