"""Printable sheets: terminal labels for IT, each unit's poster and stickers for its staff (A4 SVG).

The browser opens the SVG and prints it at actual size. Labels carry each terminal's claim code;
posters and stickers the open-feedback address of the configuration in force for the unit. A unit
whose configuration has no such address gets a page saying how to set one, not a poster without a
code.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, abort, current_app, render_template, request
from flask_babel import force_locale
from flask_babel import gettext as _

from ..accounts import ADMIN, LANGUAGES, MANAGER
from ..configs import unit_resolution
from ..org import LOCATION, UNIT, OrgNode
from ..sheets import (
    LABELS_3X7,
    PosterTexts,
    feedback_address,
    fleet_address,
    label_sheet,
    poster,
    sheet_count,
    sticker_sheet,
)
from . import extension, scope
from .access import STAFF, allow, me
from .i18n import LOCALES, language

bp = Blueprint("sheets", __name__, url_prefix="/sheets")

#: An SVG document may style itself (its presentation attributes), and nothing more: no script, no
#: fetching, no framing.
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


@bp.app_template_global()
def label_sheets(count: int) -> list[tuple[int, int, int]]:
    """The label sheets of ``count`` terminals: (page, first, last), numbered from 1."""
    per = LABELS_3X7.per_sheet
    return [(p, (p - 1) * per + 1, min(count, p * per)) for p in range(1, sheet_count(count) + 1) if count]


@bp.get("/labels.svg")
@allow(ADMIN)
def labels() -> Response:
    """A sheet of terminal labels: every unretired terminal (``?page=N``, 21 a sheet) or those named
    by ``?device=a&device=b``."""
    retired = extension("org").retired()
    known = {s.device for s in extension("store").terminals()}
    chosen = request.args.getlist("device")
    if chosen:
        if any(d not in known or d in retired for d in chosen):
            abort(404)
        devices = list(dict.fromkeys(chosen))
    else:
        devices = sorted(d for d in known if d not in retired)
    page = request.args.get("page", 1, type=int)
    per = LABELS_3X7.per_sheet
    if page < 1 or page > sheet_count(len(devices)):
        abort(404)
    shown = devices[(page - 1) * per : page * per]
    settings = current_app.config["HYMY"]
    svg = label_sheet(
        shown,
        fleet_address(settings.public_url, request.url_root),
        _("Hymy terminal"),
        _("Terminal labels, sheet %(page)s", page=page),
    )
    return _svg(svg, f"hymy-labels-{page}.svg")


@bp.get("/units/<int:node_id>/poster.svg")
@allow(*STAFF)
def unit_poster(node_id: int) -> Response | tuple[str, int]:
    """The unit's A4 poster in ``?lang=`` (fi, sv, en; default the page's language)."""
    unit, lang, url, name, code = _unit_sheet(node_id)
    if url is None:
        return _no_address(unit)
    with force_locale(LOCALES[lang]):
        texts = PosterTexts(
            invitation=_("Tell us how we did — scan the code"),
            notice=_("Do not write health or identity information"),
        )
        title = _("Feedback poster: %(unit)s", unit=name)
    return _svg(poster(name, url, lang, texts, title), f"hymy-poster-{code}-{lang}.svg")


@bp.get("/units/<int:node_id>/stickers.svg")
@allow(*STAFF)
def unit_stickers(node_id: int) -> Response | tuple[str, int]:
    """A sheet of small stickers (the code and the unit's name) in ``?lang=``."""
    unit, lang, url, name, code = _unit_sheet(node_id)
    if url is None:
        return _no_address(unit)
    with force_locale(LOCALES[lang]):
        title = _("Feedback stickers: %(unit)s", unit=name)
    return _svg(sticker_sheet(name, url, lang, title), f"hymy-stickers-{code}-{lang}.svg")


def _unit_sheet(node_id: int) -> tuple[OrgNode, str, str | None, str, str]:
    """The unit (inside the person's part, else 404), the sheet's language, its feedback address, and
    the name and code the sheet carries. A location's sheet follows its unit's configuration and
    carries the location's own address (``{unit}`` in the address becomes the location's code: its
    answers go to the unit and note the location)."""
    t = scope.tree()
    node = scope.node_or_404(t, node_id)
    if node.kind not in (UNIT, LOCATION) or node.archived:
        abort(404)
    unit = node if node.kind == UNIT else t.unit_of(node.id)
    if unit is None or unit.archived:
        abort(404)
    lang = request.args.get("lang") or language()
    if lang not in LANGUAGES:
        abort(404)
    doc = extension("configs").unit_doc(unit, t, address_code=node.code)
    name = unit.name(lang) if node is unit else f"{unit.name(lang)} · {node.name(lang)}"
    return unit, lang, feedback_address(doc), name, node.code


def _no_address(unit: OrgNode) -> tuple[str, int]:
    """The page that says why there is no poster and how to give the unit a feedback address."""
    t = scope.tree()
    configs = extension("configs")
    resolution = unit_resolution(configs.assignments(), t, unit)
    found = None if resolution.set_id is None else configs.get_set(resolution.set_id)
    page = render_template(
        "sheets/no_address.html",
        unit=unit,
        config_set=found,
        can_open_set=me().role in (ADMIN, MANAGER),
    )
    return page, 409


def _svg(text: str, filename: str) -> Response:
    """An SVG sheet shown in the browser (to print), saved under ``filename`` when downloaded."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
    response = Response(text, mimetype="image/svg+xml")
    response.headers["Content-Disposition"] = f'inline; filename="{safe}"'
    response.headers["Content-Security-Policy"] = SVG_CSP
    response.headers["Cache-Control"] = "no-store"
    return response
