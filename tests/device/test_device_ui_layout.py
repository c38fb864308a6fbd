"""Every screen, in every shipped language, at 800×480, 1280×800 and 1920×1080, landscape and portrait:
no text overflows its box, every touch target is at least 9 mm, and targets never overlap."""

from __future__ import annotations

import pygame
import pytest

from device.ui import gallery
from device.ui.canvas import Frame
from device.ui.fonts import REQUIRED_LETTERS, choose_family, missing_glyphs
from device.ui.textfit import fit_text
from device.ui.theme import MIN_TARGET_MM, Metrics


@pytest.fixture(scope="module")
def frames() -> list[tuple[str, Frame]]:
    """Each screen drawn once per language and size (the whole set takes about a second)."""
    pygame.font.init()
    return list(gallery.frames())


def test_every_screen_language_and_size_is_drawn(frames: list[tuple[str, Frame]]) -> None:
    stems = {stem for stem, _ in frames}
    for w, h in [(800, 480), (480, 800), (1280, 800), (800, 1280), (1920, 1080), (1080, 1920)]:
        for lang in ("fi", "sv", "en"):
            for screen in ("question-nps11", "question-faces4", "question-faces5", "followup", "role", "thanks"):
                assert f"{screen}-{lang}-{w}x{h}" in stems
            assert f"closed-{lang}-{w}x{h}" in stems
        assert f"unplaced-all-{w}x{h}" in stems and f"unavailable-all-{w}x{h}" in stems


def test_no_text_overflows_and_every_target_is_at_least_9_mm(frames: list[tuple[str, Frame]]) -> None:
    problems = [f"{stem}: {p}" for stem, frame in frames for p in frame.problems()]
    assert problems == []
    for _stem, frame in frames:
        assert all(f.fits for f in frame.fits)
        for target in frame.targets:
            side_mm = min(target.rect.size) * 25.4 / frame.metrics.dpi
            assert side_mm >= MIN_TARGET_MM


def test_answer_screens_offer_one_target_per_answer_and_each_language(frames: list[tuple[str, Frame]]) -> None:
    for stem, frame in frames:
        actions = [t.action for t in frame.targets]
        expected = {"question-nps11": 11, "question-faces4": 4, "question-faces5": 5}
        for screen, n in expected.items():
            if stem.startswith(screen + "-"):
                assert [a for a in actions if a[0] == "answer"] == [("answer", i) for i in range(n)]
                assert [a for a in actions if a[0] == "lang"] == [("lang", "fi"), ("lang", "sv"), ("lang", "en")]
        if stem.startswith(("followup-", "role-")):
            assert ("skip",) in actions


def test_the_chosen_font_writes_finnish_swedish_and_sami() -> None:
    family = choose_family()
    assert missing_glyphs(family.regular) == "" and missing_glyphs(family.bold) == ""
    assert set("äöåščđŋŧžá") <= set(REQUIRED_LETTERS)


def test_the_fitter_shrinks_and_wraps_until_it_fits() -> None:
    family = choose_family()
    box = pygame.Rect(0, 0, 300, 120)
    fit = fit_text(family, "Kuinka todennäköisesti suosittelisit saamaasi palvelua läheisellesi?", box, 60, 12)
    assert fit.fits and 12 <= fit.size < 60 and len(fit.lines) > 1
    assert fit.width <= box.width and fit.height <= box.height


def test_the_fitter_reports_a_text_that_cannot_fit() -> None:
    family = choose_family()
    fit = fit_text(family, "Terveyskeskuspäivystyksen " * 20, pygame.Rect(0, 0, 120, 40), 30, 20)
    assert not fit.fits
    assert fit.problem() is not None and "needs" in (fit.problem() or "")


def test_minimum_target_follows_the_dpi() -> None:
    assert Metrics(800, 480, 133).min_target == 48  # 9 mm at 133 dpi
    assert Metrics(1920, 1080, 254).min_target == 90
