"""``hymy fleet themes``: measure the theme step, or assign themes to texts still waiting for them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import ThemeMethod

#: The built-in method's variants ``--compare`` measures (the first is what the fleet runs).
VARIANTS: dict[str, dict[str, Any]] = {
    "builtin (rules + stemmed words + char n-grams)": {},
    "without the rules' hits": {"rules": False},
    "stemmed words only": {"chars": False, "rules": False},
    "character n-grams only": {"words": False, "rules": False},
    "words without stemming + char n-grams": {"stem": False, "rules": False},
    "fixed threshold 0.4 (no tuning)": {"tune": False},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--evaluate",
        action="store_true",
        help="print precision and recall per theme on the labelled evaluation texts (never trained on)",
    )
    what.add_argument("--assign", action="store_true", help="assign themes to stored texts that have none yet")
    parser.add_argument("--compare", action="store_true", help="with --evaluate: also the built-in method's variants")
    parser.add_argument(
        "--settings",
        type=Path,
        default=None,
        help="the fleet web's settings file: its theme method (themes_method = openai measures the county's service)",
    )


def _configured(settings_file: Path | None) -> ThemeMethod:
    from ..web.settings import load_settings
    from .builtin import shipped_model

    settings = load_settings(settings_file)
    if settings.themes_method == "openai":
        from .openai import OpenAISettings, OpenAIThemes

        return OpenAIThemes(OpenAISettings(settings.themes_url, settings.themes_model, settings.themes_api_key))
    return shipped_model()


def run(args: argparse.Namespace) -> int:
    """Evaluate or assign; returns the exit status."""
    from .builtin import BuiltinThemes, shipped
    from .evaluate import by_language, evaluate, report
    from .model import Text

    if args.evaluate:
        examples = shipped("eval")
        train = shipped("train")
        print(f"training texts: {len(train)}; evaluation texts: {len(examples)} (kept apart, never trained on)")
        method = _configured(args.settings)
        ev = evaluate(method, examples)
        got = method.assign([Text(e.lang, e.text) for e in examples])
        print(report(ev, by_language(examples, got, method.name)))
        if args.compare:
            print()
            print(f"{'variant':<46}{'micro P':>9}{'micro R':>9}{'micro F1':>10}{'macro F1':>10}{'tone acc':>10}")
            from .keywords import KeywordThemes

            methods: list[tuple[str, ThemeMethod]] = [
                (label, BuiltinThemes(train, **options)) for label, options in VARIANTS.items()
            ]
            methods.append(("hand-written keyword rules (keywords.py)", KeywordThemes()))
            for label, candidate in methods:
                variant = evaluate(candidate, examples, label)
                m = variant.micro
                print(
                    f"{label:<46}{m.precision:>9.2f}{m.recall:>9.2f}{m.f1:>10.2f}"
                    f"{variant.macro_f1:>10.2f}{variant.tone_accuracy:>10.2f}"
                )
        return 0
    if getattr(args, "db", None) is None:
        raise ValueError("--assign needs --db PATH_OR_URL")
    from ..db.feedback import FeedbackRecords
    from ..feedback import Themes, ThemeSettings
    from ..store import open_store
    from ..web.settings import load_settings

    settings = load_settings(args.settings)
    with open_store(args.db) as store:
        records = FeedbackRecords(store)  # type: ignore[arg-type]
        themes = Themes(
            records,
            ThemeSettings(settings.themes_method, settings.themes_url, settings.themes_model, settings.themes_api_key),
        )
        total = 0
        while True:
            done = themes.assign_pending()
            total += done
            if not done:
                break
    print(f"themes assigned to {total} text(s)")
    return 0
