"""The staff interface in Finnish, Swedish and English: gettext catalogs through Flask-Babel.

The language is the signed-in person's choice (kept on the account), else the one chosen on the
sign-in page (kept in the session), else the browser's preference among the three, else Finnish.
Dates, times and numbers are formatted for it by Babel (a decimal comma in Finnish and Swedish).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from flask import Flask, request, session
from flask_babel import Babel, format_datetime, format_decimal, format_time, to_user_timezone
from flask_login import current_user

from ..accounts import LANGUAGES

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
#: The language each language is named in, for the switcher (a language is named in itself).
LANGUAGE_NAMES = {"fi": "Suomi", "sv": "Svenska", "en": "English"}


#: The locale each language is formatted in: English as in Europe (2 December 2026, 17:39), not the US.
LOCALES = {"fi": "fi_FI", "sv": "sv_FI", "en": "en_GB"}


def language() -> str:
    """The language of this request: fi, sv or en."""
    if current_user and current_user.is_authenticated:
        return str(current_user.account.lang)
    chosen = request.args.get("lang") or session.get("lang")  # ?lang=: a public page or widget's address
    if chosen in LANGUAGES:
        return str(chosen)
    return request.accept_languages.best_match(LANGUAGES) or "fi"


def select_language() -> str:
    """The Babel locale of this request (its catalog is the language's; its formats the country's)."""
    return LOCALES[language()]


def init_i18n(app: Flask) -> None:
    """Flask-Babel with our catalogs, and the formatting helpers templates use."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "fi")
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "Europe/Helsinki")
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    Babel(app, locale_selector=select_language)

    @app.template_filter("ms_time")
    def ms_time(ms: int | None) -> str:
        """A time in ms since the epoch, in the fleet's zone and the page's language."""
        if ms is None:
            return "–"
        return str(format_datetime(datetime.fromtimestamp(ms / 1000, UTC), "short"))

    @app.template_filter("ms_short")
    def ms_short(ms: int | None) -> str:
        """A time in ms, without the date when it is today (a registry column stays narrow)."""
        if ms is None:
            return "–"
        moment = datetime.fromtimestamp(ms / 1000, UTC)
        if to_user_timezone(moment).date() == to_user_timezone(datetime.now(UTC)).date():
            return str(format_time(moment, "short"))
        return str(format_datetime(moment, "short"))

    @app.template_filter("number")
    def number(value: float | int | None, digits: int = 0) -> str:
        """A number for the page's language (grouping and decimal comma)."""
        if value is None:
            return "–"
        fmt = "#,##0" + ("." + "0" * digits if digits else "")
        return str(format_decimal(value, format=fmt))

    @app.context_processor
    def languages() -> dict[str, object]:
        return {"lang": language(), "language_names": LANGUAGE_NAMES}
