"""Every screen in every shipped language at the common screen sizes, for ``--screenshot`` and the tests.

A sample unit's configuration drives the question, follow-up, thanks and closed screens, so
what a person looks at in the PNGs is what a terminal would show.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pygame

import protocol
from device.strings import SHIPPED

from . import compose
from .canvas import Frame
from .fonts import FontFamily, choose_family
from .screens import render
from .views import View

#: Landscape sizes with a typical panel's dots per inch: the official 7" touch display, a 10.1"
#: panel, a 15.6" full-HD panel. Portrait is the same panels turned.
SIZES: dict[tuple[int, int], float] = {(800, 480): 133.0, (1280, 800): 149.0, (1920, 1080): 141.0}
#: A moment when the sample unit is closed (Saturday 2026-03-14 20:00 Helsinki), for the closed screen.
CLOSED_AT = datetime(2026, 3, 14, 18, 0, tzinfo=UTC)


def sample_doc(scale: str = "nps11") -> dict[str, Any]:
    """A complete configuration: THL's recommendation question, a follow-up, hours, role and feedback QR."""
    nps = scale == "nps11"
    size = protocol.SCALES[scale].size
    low = list(range(0, 9)) if nps else list(range(0, size // 2))
    high = [9, 10] if nps else list(range(size // 2, size))
    doc = {
        "unit": "sample-unit",
        "languages": ["fi", "sv", "en"],
        "default_language": "fi",
        "question": {
            "id": "thl-nps" if nps else "visit",
            "scale": scale,
            "text": {
                "fi": "Kuinka todennäköisesti suosittelisit saamaasi palvelua läheisellesi tai ystävällesi?",
                "sv": "Hur sannolikt är det att du skulle rekommendera tjänsten du fick till en närstående eller vän?",
                "en": "How likely would you be to recommend the service you received to a family member or "
                "friend in the same situation?",
            }
            if nps
            else {"fi": "Miten onnistuimme tänään?", "sv": "Hur lyckades vi i dag?", "en": "How did we do today?"},
        },
        "thanks_s": 5,
        "hours": {
            "tz": "Europe/Helsinki",
            "weekly": {d: [["08:00", "16:00"]] for d in ("mon", "tue", "wed", "thu")} | {"fri": [["08:00", "14:00"]]},
        },
        "followup": {
            "timeout_s": 20,
            "branches": [
                {
                    "answers": low,
                    "question": {
                        "fi": "Mitä meidän pitäisi parantaa?",
                        "sv": "Vad borde vi förbättra?",
                        "en": "What should we improve?",
                    },
                    "choices": [
                        {"id": "waiting", "text": {"fi": "Odotusaika", "sv": "Väntetiden", "en": "Waiting time"}},
                        {"id": "kindness", "text": {"fi": "Ystävällisyys", "sv": "Vänligheten", "en": "Kindness"}},
                        {
                            "id": "information",
                            "text": {"fi": "Tiedon saaminen", "sv": "Informationen", "en": "Getting information"},
                        },
                        {
                            "id": "premises",
                            "text": {
                                "fi": "Tilat ja siisteys",
                                "sv": "Lokalerna och städningen",
                                "en": "Premises and cleanliness",
                            },
                        },
                    ],
                },
                {
                    "answers": high,
                    "question": {"fi": "Mikä onnistui parhaiten?", "sv": "Vad lyckades bäst?", "en": "What went best?"},
                    "choices": [
                        {"id": "staff", "text": {"fi": "Henkilökunta", "sv": "Personalen", "en": "The staff"}},
                        {"id": "speed", "text": {"fi": "Nopeus", "sv": "Snabbheten", "en": "Speed"}},
                        {
                            "id": "care",
                            "text": {"fi": "Hoidon laatu", "sv": "Vårdens kvalitet", "en": "Quality of care"},
                        },
                    ],
                },
            ],
        },
        "role_question": True,
        "feedback_url": "https://palaute.example.fi/u/sample-unit",
    }
    return protocol.validate_config_doc(doc)


def views(lang: str, device_id: str = "term-0001") -> Iterator[tuple[str, View]]:
    """(screen name, view) for every screen in ``lang``; "all" gives the multilingual notices."""
    if lang == "all":
        yield "unplaced", compose.unplaced_view(device_id)
        yield "unavailable", compose.unavailable_view(device_id)
        yield "enrolling", compose.enrolling_view(device_id, "https://hymy.example.fi/", "r-3f9c2a7b41d84e6f")
        return
    for scale in ("nps11", "faces4", "faces5"):
        yield f"question-{scale}", compose.question_view(sample_doc(scale), lang)
    doc = sample_doc()
    branch = compose.followup_branch(doc, 3)
    assert branch is not None
    yield "followup", compose.followup_view(doc, branch, lang)
    yield "role", compose.role_view(doc, lang)
    yield "thanks", compose.thanks_view(doc, lang)
    yield "closed", compose.closed_view(doc, lang, CLOSED_AT)


def sizes() -> Iterator[tuple[int, int, float]]:
    """Each common size, landscape then portrait, with its dots per inch."""
    for (w, h), dpi in SIZES.items():
        yield w, h, dpi
        yield h, w, dpi


def frames(family: FontFamily | None = None) -> Iterator[tuple[str, Frame]]:
    """``(file stem, frame)`` for every screen, language and size; each frame drawn once."""
    family = family or choose_family()
    for w, h, dpi in sizes():
        surface = pygame.Surface((w, h))
        for lang in (*SHIPPED, "all"):
            for name, view in views(lang):
                yield f"{name}-{lang}-{w}x{h}", render(view, surface, family, dpi)


def write_screenshots(directory: Path) -> list[Path]:
    """Write every frame to ``directory`` as ``screen-lang-WxH.png``; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, frame in frames():
        path = directory / f"{stem}.png"
        pygame.image.save(frame.surface, str(path))
        written.append(path)
    return written
