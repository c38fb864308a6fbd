"""Which figures the public pages may show: enough answers, and no hidden one given away by the others.

A node (region, service area, unit) is shown to residents only with at least ``minimum`` answers
(default 30). That is not enough on its own: a parent's figure is the sum of its children's, so a
service area of two units, one shown and one hidden, gives the hidden one away by subtraction
(DESIGN guarantee 7). So after the small nodes are hidden, any hidden node whose answers could still
be worked out from the shown figures has its nearest shown ancestor hidden too, and so on until no
hidden node can be worked out.

"Worked out" follows the sums exactly: a node's counts are known when it is shown, when every child
that has answers is known (their sum), or when its parent and every sibling with answers are known
(the difference). A node with no answers is known to be empty and gives nothing away. Two hidden
units under one shown parent give only their combined figure, never either one's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set


def _known(
    parent: Mapping[str, str | None],
    children: Mapping[str | None, Sequence[str]],
    n: Mapping[str, int],
    shown: set[str],
) -> set[str]:
    """Every node whose answer counts follow from the shown figures and the tree's sums."""
    known = set(shown) | {x for x in parent if n.get(x, 0) == 0}
    changed = True
    while changed:
        changed = False
        for x in parent:
            if x in known:
                continue
            kids = children.get(x, ())
            if kids and all(k in known for k in kids):
                known.add(x)
                changed = True
                continue
            p = parent[x]
            if p is not None and p in known and all(s in known for s in children.get(p, ()) if s != x):
                known.add(x)
                changed = True
    return known


def hidden_nodes(
    parent: Mapping[str, str | None], n: Mapping[str, int], minimum: int, unpublished: Set[str] = frozenset()
) -> set[str]:
    """The nodes whose figures the public pages must hide.

    ``parent``: every node's parent (None for a region); ``n``: answers per node over the period (a
    parent's is the sum of its children's); ``unpublished``: nodes never shown (archived), which
    still count in their parents' sums and so must not be worked out either.
    """
    children: dict[str | None, list[str]] = {}
    for x, p in parent.items():
        children.setdefault(p, []).append(x)
    primary = {x for x in parent if 0 < n.get(x, 0) < minimum} | {x for x in unpublished if n.get(x, 0) > 0}
    hidden = set(primary) | set(unpublished)
    while True:
        shown = {x for x in parent if x not in hidden}
        known = _known(parent, children, n, shown)
        exposed = sorted(x for x in primary if x in known)
        if not exposed:
            return hidden
        # Hide the nearest shown ancestor of the first exposed node; repeat until none is exposed.
        up = parent[exposed[0]]
        while up is not None and up in hidden:
            up = parent[up]
        if up is None:  # cannot happen: an exposed node is known through a shown ancestor
            raise AssertionError(f"{exposed[0]} is exposed with no shown ancestor")
        hidden.add(up)
