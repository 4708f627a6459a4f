"""How long `assist --help` takes (the CLI must not load the triage model or the app to print help)."""

import statistics
import subprocess
import sys
import time
from pathlib import Path

ASSIST = str(Path(sys.executable).with_name("assist"))
RUNS = 10


def main() -> None:
    for args in (["--help"], ["--version"], ["simulate", "--help"]):
        times = []
        for _ in range(RUNS):
            start = time.perf_counter()
            subprocess.run([ASSIST, *args], check=True, capture_output=True)
            times.append(time.perf_counter() - start)
        print(f"assist {' '.join(args):<16} median {statistics.median(times):.3f} s  "
              f"max {max(times):.3f} s  ({RUNS} runs)")


if __name__ == "__main__":
    main()
