"""Print a systematic sample of one module's mutmut mutants, for a mutation run that fits in minutes.

Usage (after any ``mutmut run`` has generated ./mutants; see docs/testing.md)::

    mutmut run --max-children 2 $(python -m tests.mutation_sample protocol.codec 8)

keeps every mutant whose number is divisible by 8 in each function, so every function of the
module is sampled alike and the same command picks the same mutants again.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def sample(module: str, every: int, root: Path = Path("mutants")) -> list[str]:
    """Names of ``module``'s mutants whose number is a multiple of ``every`` (all of them for 1)."""
    meta = root / (module.replace(".", "/") + ".py.meta")
    names = json.loads(meta.read_text())["exit_code_by_key"]
    return sorted(n for n in names if int(n.rsplit("__mutmut_", 1)[1]) % every == 0)


def main(argv: list[str]) -> int:
    """Print the sample, one name per line."""
    if len(argv) != 2:
        print("usage: python -m tests.mutation_sample MODULE EVERY", file=sys.stderr)
        return 2
    print("\n".join(sample(argv[0], int(argv[1]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
