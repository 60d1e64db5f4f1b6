"""`make test-fast`: the tests a developer runs while working (pytest -m "not slow": the domain and FIBO rules,
the captioner's pure parts, the settings and deploy files), timed. The issue's budget is 60 s, start-up and
collection included; the figure is printed with the load average, since 4 helpers may share 2 cores.

Prints e.g. `test-fast: 41.2 s for 321 tests (budget 60 s), load average 5.6 4.1 3.0`; exits with pytest's
code, or 1 when the budget is exceeded on an idle machine (load below the core count)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_SECONDS = 60


def main() -> int:
    started = time.monotonic()
    command = [sys.executable, "-m", "pytest", "-m", "not slow", "-q", *sys.argv[1:]]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as pytest:
        output = []
        for line in pytest.stdout:  # shown as it comes, kept for the count
            sys.stdout.write(line)
            output.append(line)
    seconds = time.monotonic() - started
    passed = re.search(r"(\d+) passed", "".join(output[-3:]))
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    count = passed[1] if passed else "?"
    print(f"test-fast: {seconds:.1f} s for {count} tests (budget {BUDGET_SECONDS} s), load average {load}")
    if pytest.returncode:
        return pytest.returncode
    if seconds > BUDGET_SECONDS and os.getloadavg()[0] < (os.cpu_count() or 1):
        print(f"test-fast: over the {BUDGET_SECONDS} s budget on an idle machine", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
