"""How the demo shows results: a compact table per unit and question, and one line of fleet health.

Pure formatting of what ``fleet.results`` computes, so it can be tested without a broker.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleet.results import Key
from fleet.scores import Score

_SCALE_LABELS = {"nps11": "0–10", "faces4": "4 faces", "faces5": "5 faces", "agree5": "agree 1–5"}


def _signed(x: float) -> str:
    """An NPS figure with its sign (a true minus), and a bare 0."""
    n = round(x)
    return "0" if n == 0 else f"+{n}" if n > 0 else f"−{-n}"


def _figure(score: Score) -> tuple[str, str]:
    """The headline figure and its 95 % interval as text: signed NPS, or the positive share in percent."""
    if score.value is None or score.low is None or score.high is None:
        return "–", ""
    if score.kind == "nps":
        return f"NPS {_signed(score.value)}", f"{_signed(score.low)} … {_signed(score.high)}"
    return f"{score.value:.0f} % positive", f"{score.low:.0f} … {score.high:.0f} %"


def render_results(scores: dict[Key, Score], names: dict[str, str], elapsed_s: float) -> str:
    """A table with one row per (unit, question, scale): n, the figure, its interval and a small-sample flag."""
    header = ("unit", "question", "n", "result", "95% interval", "note")
    rows: list[tuple[str, str, str, str, str, str]] = []
    for (unit, question, scale_name), score in sorted(scores.items(), key=lambda kv: (kv[0][0] or "", *kv[0][1:])):
        figure, interval = _figure(score)
        label = f"{question} ({_SCALE_LABELS.get(scale_name, scale_name)})"
        note = "small sample" if score.small_sample and score.n else ""
        name = names.get(unit or "", unit or "(no unit)")
        rows.append((name, label, str(score.n), figure, interval, note))
    if not rows:
        return f"results after {elapsed_s:.0f} s: no votes yet (terminals are being placed)"
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    right = {2}  # numbers align right

    def line(cells: tuple[str, ...]) -> str:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(parts).rstrip()

    title = f"results after {elapsed_s:.0f} s"
    return "\n".join([title, line(header), "  ".join("─" * w for w in widths if w).rstrip(), *map(line, rows)])


@dataclass(frozen=True)
class Health:
    """The fleet at a glance: liveness, configuration, where the votes are, and what was refused."""

    terminals: int
    online: int
    configured: int  # terminals that applied their desired configuration
    pressed: int  # presses committed on the terminals
    stored: int  # votes stored by the fleet
    queued: int  # votes on terminals still waiting for the fleet's ack
    rejected: int  # messages the fleet refused

    def line(self) -> str:
        """One line, short enough for an 80-column terminal."""
        return (
            f"fleet: {self.online}/{self.terminals} online · {self.configured}/{self.terminals} configured · "
            f"pressed {self.pressed} · stored {self.stored} · queued {self.queued} · rejected {self.rejected}"
        )


__all__ = ["Health", "render_results"]
