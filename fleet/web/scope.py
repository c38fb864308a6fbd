"""The signed-in person's part of the hierarchy: what each view may show them.

Checks live here, in the data the views read, never in templates (Datasette's lesson): an object
outside a person's part answers 404, so its existence does not leak.
"""

from __future__ import annotations

from flask import abort

from ..accounts import ADMIN
from ..org import OrgNode, Tree
from ..records import TerminalStatus
from . import extension
from .access import me


def tree() -> Tree:
    """The organisation, read once per call."""
    t: Tree = extension("org").tree()
    return t


def scope_id() -> int | None:
    """The node the signed-in person's role is granted on (None: everything)."""
    return None if me().role == ADMIN else me().scope_id


def visible_nodes(t: Tree) -> list[OrgNode]:
    """The nodes the person may see, depth first."""
    sid = scope_id()
    if sid is not None and sid not in t.nodes:
        return []
    return t.subtree(sid)


def node_or_404(t: Tree, node_id: int) -> OrgNode:
    """A node inside the person's part, else 404."""
    node = t.nodes.get(node_id)
    if node is None or not t.within(node_id, scope_id()):
        abort(404)
    return node


def terminal_visible(t: Tree, status: TerminalStatus) -> bool:
    """An administrator sees every terminal; others those placed in their units."""
    sid = scope_id()
    if sid is None:
        return True
    unit = t.by_code.get(status.unit or "")
    return unit is not None and t.within(unit.id, sid)


def terminals(t: Tree) -> list[TerminalStatus]:
    """The terminals the person may see."""
    return [s for s in extension("store").terminals() if terminal_visible(t, s)]
