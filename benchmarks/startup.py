"""Start-up time of `cnnreg list` next to `python -c "import keras"`, in the same run.

Run by hand:  python benchmarks/startup.py [--repeat 9]
Target (issue 2): `cnnreg list` median <= 0.3 s on a 2-core machine and <= 10% of the keras import.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time


def median_wall(cmd: list[str], repeat: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    runs = {
        "cnnreg --help": [sys.executable, "-m", "cnnreg", "--help"],
        "cnnreg list": [sys.executable, "-m", "cnnreg", "list"],
        "cnnreg show he_normal": [sys.executable, "-m", "cnnreg", "show", "he_normal"],
        "python -c 'import keras'": [sys.executable, "-c", "import keras"],
    }
    results = {name: median_wall(cmd, args.repeat, env) for name, cmd in runs.items()}
    keras_time = results["python -c 'import keras'"]
    print(f"cores: {os.cpu_count()}  python: {sys.version.split()[0]}  repeats: {args.repeat} (median wall time)")
    for name, seconds in results.items():
        print(f"{name:28s} {seconds * 1000:8.0f} ms   {seconds / keras_time:6.1%} of import keras")


if __name__ == "__main__":
    main()
