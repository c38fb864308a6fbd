"""The audit log, for IT: every change people made, newest first, with before and after."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, render_template, request

from ..accounts import ADMIN
from . import extension
from .access import allow

bp = Blueprint("audit", __name__)
PAGE = 100


def changes(before: Any, after: Any) -> list[tuple[str, str, str]]:
    """What an entry changed, field by field: (field, before, after) as text; whole values otherwise."""
    if isinstance(before, dict) and isinstance(after, dict):
        keys = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        return [(k, _text(before.get(k)), _text(after.get(k))) for k in keys]
    if isinstance(after, dict) and before is None:
        return [(k, "", _text(v)) for k, v in sorted(after.items()) if v not in (None, "", False)]
    return [("", _text(before), _text(after))]


def _text(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


@bp.get("/audit")
@allow(ADMIN)
def log() -> str:
    """One page of the log; ``?object=terminal:pi-7`` keeps one object's entries."""
    page = max(1, request.args.get("page", 1, type=int) or 1)
    obj = request.args.get("object") or None
    entries = extension("org").audit_entries(limit=PAGE + 1, offset=(page - 1) * PAGE, obj=obj)
    return render_template(
        "audit.html", entries=entries[:PAGE], page=page, more=len(entries) > PAGE, obj=obj, changes=changes
    )
