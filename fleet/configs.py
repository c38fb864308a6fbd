"""Configurations people edit in the fleet web: shipped question sets, and which one a terminal gets.

A configuration set is a named series of versions of one terminal document without its unit
(``unit`` null); publishing a version makes it the set's current one. Sets are assigned to a region,
service area, unit, location or single terminal, and the nearest assignment wins: terminal, then its
location, unit, service area, region; with none, the shipped national NPS question. A terminal's
document is the winning set's current version with its unit filled in and its unit's own opening
hours and misuse interval, when the unit has them (the unit is the more specific).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from protocol import ProtocolError, validate_config_doc
from protocol.configdoc import SHIPPED_LANGUAGES, missing_strings

from .content import default_config_doc
from .org import OrgNode, Tree

_HYMY_SOURCE = "Hymy project text, not from a national source; awaiting review by native speakers."
_SOURCES = {lang: _HYMY_SOURCE for lang in SHIPPED_LANGUAGES}

#: A follow-up after the score: what to improve after a low answer, what was good after a high one.
#: The choices are the reasons the regions' surveys ask about (waiting, staff, information, premises).
_REASONS = [
    {"id": "waiting", "text": {"fi": "Odotusaika", "sv": "Väntetiden", "en": "Waiting time"}},
    {
        "id": "friendliness",
        "text": {"fi": "Henkilökunnan ystävällisyys", "sv": "Personalens vänlighet", "en": "Friendliness of the staff"},
    },
    {"id": "information", "text": {"fi": "Saamani tieto", "sv": "Informationen jag fick", "en": "Information I got"}},
    {
        "id": "facilities",
        "text": {"fi": "Tilat ja siisteys", "sv": "Lokaler och städning", "en": "Premises and cleanliness"},
    },
]


def _followup(low: list[int], high: list[int]) -> dict[str, Any]:
    return {
        "branches": [
            {
                "answers": low,
                "question": {
                    "fi": "Missä voisimme parantaa?",
                    "sv": "Vad kan vi göra bättre?",
                    "en": "What could we do better?",
                },
                "choices": copy.deepcopy(_REASONS),
            },
            {
                "answers": high,
                "question": {"fi": "Mikä onnistui?", "sv": "Vad var bra?", "en": "What went well?"},
                "choices": copy.deepcopy(_REASONS),
            },
        ]
    }


#: The face scales' question: about today's visit, as the regions' terminals ask it.
_VISIT = {
    "fi": "Miten tyytyväinen olit käyntiisi tänään?",
    "sv": "Hur nöjd var du med ditt besök i dag?",
    "en": "How satisfied were you with your visit today?",
}


def _hymy_question(qid: str, scale: str, text: dict[str, str]) -> dict[str, Any]:
    """A question written by the project: its source says so, and every text awaits a native speaker."""
    return {"id": qid, "scale": scale, "text": dict(text), "sources": dict(_SOURCES), "review": list(SHIPPED_LANGUAGES)}


def _with_question(question: dict[str, Any], **extra: Any) -> dict[str, Any]:
    doc = default_config_doc(None)
    doc["question"] = question
    doc.update(extra)
    return validate_config_doc(doc)


#: The shipped starting points, by key: (name, document). Texts keep their sources beside them.
TEMPLATES: dict[str, tuple[str, dict[str, Any]]] = {
    "nps": ("National NPS question (THL)", default_config_doc(None)),
    "nps-followup": (
        "National NPS question with a follow-up",
        _with_question(default_config_doc(None)["question"], followup=_followup(list(range(0, 7)), [9, 10])),
    ),
    "faces4": ("Four faces", _with_question(_hymy_question("hymy-visit-faces4", "faces4", _VISIT))),
    "faces5": ("Five faces", _with_question(_hymy_question("hymy-visit-faces5", "faces5", _VISIT))),
    "agree5": (
        "Agree–disagree statement",
        _with_question(
            _hymy_question(
                "hymy-statement-treated-well",
                "agree5",
                {"fi": "Minua kohdeltiin hyvin.", "sv": "Jag blev väl bemött.", "en": "I was treated well."},
            )
        ),
    ),
}


@dataclass(frozen=True, slots=True)
class Check:
    """What a document's check found: an error stops publishing; warnings are shown before it."""

    error: str | None
    #: (what, detail): ``not_offered`` (shipped languages left out), ``review`` (texts awaiting a native
    #: speaker's review), ``strings`` (an added language's missing interface texts, "se: thanks, …").
    warnings: list[tuple[str, str]]


def check_doc(doc: Any) -> Check:
    """Validate as the terminal validates, and list what people should see before publishing."""
    try:
        validate_config_doc(doc)
    except ProtocolError as exc:
        return Check(exc.detail, [])
    warnings = []
    langs = doc["languages"]
    not_offered = [lang for lang in SHIPPED_LANGUAGES if lang not in langs]
    if not_offered:
        warnings.append(("not_offered", ", ".join(not_offered)))
    review = doc["question"].get("review") or []
    if review:
        warnings.append(("review", ", ".join(review)))
    for lang, keys in missing_strings(doc).items():
        warnings.append(("strings", f"{lang}: {', '.join(keys)}"))
    return Check(None, warnings)


@dataclass(frozen=True, slots=True)
class Resolution:
    """Which set a terminal gets and why."""

    set_id: int | None  # None: the shipped default
    target: str | None  # the assignment that won, e.g. "node:12" or "terminal:pi-1"
    reason: str  # "terminal", "location", "unit", "area", "region" or "default"


def resolve(
    assignments: dict[str, int], tree: Tree, device: str, unit: OrgNode | None, location_id: int | None
) -> Resolution:
    """The nearest assignment for a terminal: the terminal itself, its location, then up from its unit."""
    candidates: list[tuple[str, str]] = [(f"terminal:{device}", "terminal")]
    if location_id is not None and location_id in tree.nodes:
        candidates.append((f"node:{location_id}", "location"))
    if unit is not None:
        for node in reversed(tree.path(unit.id)):
            candidates.append((f"node:{node.id}", node.kind))
    for target, reason in candidates:
        if target in assignments:
            return Resolution(assignments[target], target, reason)
    return Resolution(None, None, "default")


def unit_resolution(assignments: Mapping[str, int], tree: Tree, unit: OrgNode) -> Resolution:
    """The configuration set in force for a unit as a whole: the nearest assignment from the unit up.

    A terminal's own or its location's assignment may differ; the unit's poster follows the unit.
    """
    for node in reversed(tree.path(unit.id)):
        target = f"node:{node.id}"
        if target in assignments:
            return Resolution(assignments[target], target, node.kind)
    return Resolution(None, None, "default")


#: In a set's feedback_url, where each unit's code goes: one set gives every unit its own form.
UNIT_PLACEHOLDER = "{unit}"


def unit_feedback_url(url: str | None, unit_code: str) -> str | None:
    """``url`` with the unit's code in place of ``{unit}`` (codes are URL-safe: letters, digits, ._:-)."""
    if not url:
        return None
    return url.replace(UNIT_PLACEHOLDER, unit_code)


def terminal_doc(base: dict[str, Any], unit: OrgNode | None) -> dict[str, Any]:
    """The document a terminal in ``unit`` gets from a set's ``base`` document."""
    doc = copy.deepcopy(base)
    doc["unit"] = None if unit is None else unit.code
    if unit is not None and doc.get("feedback_url"):
        doc["feedback_url"] = unit_feedback_url(doc["feedback_url"], unit.code)
    if unit is not None and unit.hours:
        doc["hours"] = unit.hours
    if unit is not None and unit.misuse_interval_s is not None:
        doc["misuse_interval_s"] = unit.misuse_interval_s
    return validate_config_doc(doc)
