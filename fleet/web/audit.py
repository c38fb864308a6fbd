"""The audit log, for IT: every change people made, newest first, with before and after."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, render_template, request
from flask_babel import lazy_gettext as _l

from ..accounts import ADMIN
from . import extension
from .access import allow
from .forms import KIND_LABELS
from .i18n import language

bp = Blueprint("audit", __name__)
PAGE = 100


def changes(before: Any, after: Any, names: dict[int, str] | None = None) -> list[tuple[str, str, str]]:
    """What an entry changed, field by field: (field, before, after) as text; whole values otherwise.
    ``names``: node names, so that ``parent_id: 3`` reads as the node's name."""
    names = names or {}

    def text(key: str, value: Any) -> str:
        if key.endswith("_id") and isinstance(value, int) and value in names:
            return names[value]
        return _text(value)

    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for k in sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k)):
            old, new = before.get(k), after.get(k)
            if isinstance(old, dict) and isinstance(new, dict):  # a document: its changed parts, one level down
                out += [(f"{k}.{sub}", o, n) for sub, o, n in changes(old, new, names)]
            else:
                out.append((k, text(k, old), text(k, new)))
        return out
    if isinstance(after, dict) and before is None:  # created: its plain fields (a whole document is not news)
        return [
            (k, "", text(k, v))
            for k, v in sorted(after.items())
            if v not in (None, "", False, [], {}) and not isinstance(v, dict)
        ]
    return [("", _text(before), _text(after))]


#: Longest value shown in a change (a question's text fits; a whole document does not).
SHOWN = 300


def _text(value: Any) -> str:
    if value is None:
        return "–"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


@bp.get("/audit")
@allow(ADMIN)
def log() -> str:
    """One page of the log; ``?object=terminal:pi-7`` keeps one object's entries."""
    page = max(1, request.args.get("page", 1, type=int) or 1)
    obj = request.args.get("object") or None
    entries = extension("org").audit_entries(limit=PAGE + 1, offset=(page - 1) * PAGE, obj=obj)
    names = {n.id: n.name(language()) for n in extension("org").tree().nodes.values()}
    return render_template(
        "audit.html",
        entries=entries[:PAGE],
        page=page,
        more=len(entries) > PAGE,
        obj=obj,
        changes=lambda b, a: changes(b, a, names),
    )


_VERBS = {
    "create": _l("created"),
    "update": _l("changed"),
    "archive": _l("archived"),
    "restore": _l("restored"),
    "place": _l("placed"),
    "retire": _l("retired"),
    "save": _l("saved as a new version"),
    "publish": _l("published"),
    "assign": _l("assigned"),
    "revoke": _l("revoked"),
    "enrol": _l("enrolled"),
    "approve": _l("approved"),
    "refuse": _l("refused"),
}
_OBJECTS = {
    "terminal": _l("Terminal"),
    "account": _l("Account"),
    "config": _l("Configuration"),
    "api_token": _l("API token"),
    "enrolment_secret": _l("Enrolment secret"),
    "enrolment_request": _l("Enrolment request"),
    **KIND_LABELS,
}


def action_label(action: str) -> str:
    """An audit action such as ``unit.update`` in words ("Unit: changed"), in the page's language."""
    kind, _sep, verb = action.partition(".")
    if kind in _OBJECTS and verb in _VERBS:
        return f"{_OBJECTS[kind]}: {_VERBS[verb]}"
    return action
