"""Public figures: small nodes are hidden, and no hidden node can be worked out from the shown ones."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.publish import hidden_nodes


def _rank(rows: list[list[Fraction]]) -> int:
    """The rank of a matrix, by Gaussian elimination on exact fractions."""
    m = [r[:] for r in rows]
    rank = 0
    cols = len(m[0]) if m else 0
    for c in range(cols):
        pivot = next((i for i in range(rank, len(m)) if m[i][c] != 0), None)
        if pivot is None:
            continue
        m[rank], m[pivot] = m[pivot], m[rank]
        for i in range(len(m)):
            if i != rank and m[i][c] != 0:
                f = m[i][c] / m[rank][c]
                m[i] = [a - f * b for a, b in zip(m[i], m[rank], strict=True)]
        rank += 1
    return rank


def determinable(parent: dict[str, str | None], n: dict[str, int], shown: set[str], node: str) -> bool:
    """Whether ``node``'s count follows from the shown nodes' sums and the empty leaves, by linear
    algebra over the leaves (an oracle independent of the code under test)."""
    kids: dict[str | None, list[str]] = {}
    for x, p in parent.items():
        kids.setdefault(p, []).append(x)
    leaves = sorted(x for x in parent if x not in kids)

    def vector(x: str) -> list[Fraction]:
        under = {x}
        frontier = [x]
        while frontier:
            y = frontier.pop()
            for k in kids.get(y, []):
                under.add(k)
                frontier.append(k)
        return [Fraction(1 if leaf in under else 0) for leaf in leaves]

    rows = [vector(x) for x in sorted(shown)] + [vector(x) for x in leaves if n[x] == 0]
    if not rows:
        return False
    return _rank(rows) == _rank([*rows, vector(node)])


def tree_of(shape: list[list[int]]) -> tuple[dict[str, str | None], dict[str, int]]:
    """A region with areas of units: shape[a][u] is unit u's answers in area a."""
    parent: dict[str, str | None] = {"region": None}
    n: dict[str, int] = {}
    for a, units in enumerate(shape):
        parent[f"a{a}"] = "region"
        for u, count in enumerate(units):
            parent[f"a{a}u{u}"] = f"a{a}"
            n[f"a{a}u{u}"] = count
        n[f"a{a}"] = sum(units)
    n["region"] = sum(n[f"a{a}"] for a in range(len(shape)))
    return parent, n


def test_a_unit_under_the_minimum_is_hidden_and_its_lone_hidden_parent_too() -> None:
    parent, n = tree_of([[100, 12], [200]])
    hidden = hidden_nodes(parent, n, 30)
    # a0u1 (12 answers) is hidden; a0 minus a0u0 would give it away, and so would the region minus a1.
    assert hidden == {"a0u1", "a0", "region"}
    assert not determinable(parent, n, set(parent) - hidden, "a0u1")


def test_two_hidden_units_under_one_area_keep_the_area_shown() -> None:
    parent, n = tree_of([[100, 12, 7], [200]])
    assert hidden_nodes(parent, n, 30) == {"a0u1", "a0u2"}


def test_enough_answers_everywhere_hides_nothing() -> None:
    parent, n = tree_of([[100, 40], [30]])
    assert hidden_nodes(parent, n, 30) == set()


def test_an_archived_unit_with_answers_is_never_given_away() -> None:
    parent, n = tree_of([[100, 300], [200]])
    hidden = hidden_nodes(parent, n, 30, unpublished={"a0u1"})
    assert "a0u1" in hidden and not determinable(parent, n, set(parent) - hidden, "a0u1")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from([0, 0, 3, 12, 29, 30, 31, 80, 500]), min_size=1, max_size=4), min_size=1, max_size=4
    )
)
def test_no_hidden_figure_can_be_worked_out_from_the_shown_ones(shape: list[list[int]]) -> None:
    parent, n = tree_of(shape)
    hidden = hidden_nodes(parent, n, 30)
    shown = set(parent) - hidden
    assert all(n[x] >= 30 or n[x] == 0 for x in shown), "a small node is shown"
    for x in parent:
        if 0 < n[x] < 30:
            assert x in hidden
            assert not determinable(parent, n, shown, x), f"{x} ({n[x]} answers) can be worked out: {shape}"


def test_breaking_the_second_step_would_give_a_unit_away() -> None:
    """The oracle itself: with only the small units hidden, subtraction finds the hidden one."""
    parent, n = tree_of([[100, 12], [200]])
    assert determinable(parent, n, set(parent) - {"a0u1"}, "a0u1")


def test_an_archived_unit_with_no_answers_does_not_shield_a_hidden_sibling() -> None:
    parent, n = tree_of([[100, 12, 0], [200]])
    hidden = hidden_nodes(parent, n, 30, unpublished={"a0u2"})
    assert "a0" in hidden and not determinable(parent, n, set(parent) - hidden, "a0u1")
