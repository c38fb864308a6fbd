"""Pick a systematic sample of one module's mutmut mutants, and tally the results per module.

Usage (after any ``mutmut run`` has generated ./mutants; see docs/testing.md)::

    mutmut run --max-children 2 $(python -m tests.mutation_sample protocol.codec 8)
    python -m tests.mutation_sample --tally
    python -m tests.mutation_sample --forget-survivors fleet.scores   # then run again: survivors re-checked

The sample keeps every mutant whose number is divisible by 8 in each function, so every function
of the module is sampled alike and the same command picks the same mutants again. The tally reads
mutmut's own result files, so it counts whatever runs have been made, sampled or whole.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

#: mutmut's exit codes for a mutant (mutmut.stats.status_by_exit_code), folded into what we report.
_STATUS = {1: "killed", 3: "killed", 0: "survived", None: "not run", 36: "timeout", 24: "timeout", -24: "timeout"}
_STATUS.update({152: "timeout", 255: "timeout", 5: "no tests", 33: "no tests"})


def _results(meta: Path) -> dict[str, int | None]:
    results: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    return results


def sample(module: str, every: int, root: Path = Path("mutants")) -> list[str]:
    """Names of ``module``'s mutants whose number is a multiple of ``every`` (all of them for 1)."""
    names = _results(root / (module.replace(".", "/") + ".py.meta"))
    return sorted(n for n in names if int(n.rsplit("__mutmut_", 1)[1]) % every == 0)


def tally(root: Path = Path("mutants")) -> dict[str, Counter[str]]:
    """Per mutated module, how many mutants were killed, survived, timed out or were not run."""
    out: dict[str, Counter[str]] = {}
    for meta in sorted(root.rglob("*.py.meta")):
        module = str(meta.relative_to(root))[: -len(".py.meta")].replace("/", ".")
        out[module] = Counter(_STATUS.get(code, "other") for code in _results(meta).values())
    return out


def forget_survivors(module: str, root: Path = Path("mutants")) -> list[str]:
    """Mark ``module``'s survivors not run, so the next run checks them against the tests added since."""
    meta = root / (module.replace(".", "/") + ".py.meta")
    data = json.loads(meta.read_text())
    survivors = sorted(n for n, code in data["exit_code_by_key"].items() if code == 0)
    for name in survivors:
        data["exit_code_by_key"][name] = None
    meta.write_text(json.dumps(data, indent=4))
    return survivors


def main(argv: list[str]) -> int:
    """Print the sample, one name per line, or the tally, one module per line."""
    if argv == ["--tally"]:
        for module, counts in tally().items():
            run = counts.total() - counts["not run"]
            rate = f"{100 * counts['killed'] / run:.0f} %" if run else "-"
            print(f"{module}: {run} of {counts.total()} run, kill rate {rate}, {dict(counts)}")
        return 0
    if len(argv) == 2 and argv[0] == "--forget-survivors":
        print("\n".join(forget_survivors(argv[1])))
        return 0
    if len(argv) != 2:
        usage = "usage: python -m tests.mutation_sample MODULE EVERY | --tally | --forget-survivors MODULE"
        print(usage, file=sys.stderr)
        return 2
    print("\n".join(sample(argv[0], int(argv[1]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
