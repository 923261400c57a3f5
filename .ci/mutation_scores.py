"""The mutation score of each mutated module, from mutmut's results in mutants/ (run by .ci/mutation).

A mutant is killed when a test fails on it (a timeout counts as killed: the mutant broke the code badly enough to
hang it); it survives when every test passes, or when no test reaches its function at all. The score is the share
killed. Survivors are listed by name: `mutmut show NAME` prints the change.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

KILLED = {1: "killed", 3: "killed", 36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout",
          -11: "crashed", -9: "crashed", 37: "killed"}
SURVIVED = {0: "survived", 5: "no tests", 33: "no tests"}


def main() -> int:
    metas = sorted(Path("mutants").rglob("*.py.meta"))
    if not metas:
        print("no results in mutants/: run .ci/mutation first")
        return 1
    print("| module | mutants | killed | of which timeouts | survived | no test reaches it | not run | score |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    survivors = []
    for meta in metas:
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue
        status = Counter()
        for name, code in codes.items():
            if code is None:
                status["not run"] += 1
            elif code in KILLED:
                status["killed"] += 1
                status["timeout"] += KILLED[code] == "timeout"
            elif code in SURVIVED:
                status[SURVIVED[code]] += 1
                survivors.append(name)
            else:
                status["other"] += 1
        run = len(codes) - status["not run"]
        score = status["killed"] / run if run else float("nan")
        module = str(meta.relative_to("mutants")).removesuffix(".meta")
        print(f"| {module} | {len(codes)} | {status['killed']} | {status['timeout']} | {status['survived']} | "
              f"{status['no tests']} | {status['not run']} | {score:.0%} |")
    if survivors and "--survivors" in sys.argv:
        print("\nsurvivors:\n" + "\n".join(sorted(survivors)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
