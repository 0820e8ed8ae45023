"""A zoo of 100,000 entries: `cnnreg list weights`, `show` and a misspelt name, next to
`python -c "json.load(zoo.json)"` (reading the same file and nothing else) in the same run.

Run by hand:  python benchmarks/zoo_scale.py [--entries 100000] [--repeat 5]
Target (issue 25 item 6): `cnnreg list weights` within 2 s for 100,000 entries; a command that
reads no weights (`cnnreg list architectures`) pays nothing for the zoo.

The entries are what `cnnreg publish` writes into zoo.json (a lenet5 on digits, two metrics, one
file with its size and sha256), each with its own name and hash; the index is indented as
publish indents it.  Every command's output goes to a pipe, as in `cnnreg list weights | grep`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def entry(i: int) -> dict:
    name = f"lenet5.t{i}"
    digest = hashlib.sha256(str(i).encode()).hexdigest()
    return {
        "architecture": "lenet5", "class_names": [str(d) for d in range(10)], "class_names_file": None,
        "cnnreg_version": "0.1.0", "dataset": "digits", "depth": None,
        "files": {"model": {"filename": f"{name}-{digest[:12]}.keras", "hash": f"sha256:{digest}", "size": 291105,
                            "url": f"{name}/{name}.keras"}},
        "input_shape": [32, 32, 1], "license": "MIT", "macs": None,
        "metrics": [{"dataset": "digits", "split": "test", "top1": 0.8994413407821229, "top5": 1.0},
                    {"dataset": "digits", "split": "validation", "top1": 0.8597785830497742}],
        "name": name, "num_classes": 10, "parameters": 61706, "preprocess": "cnnreg.kinds.architectures:scale_0_1",
        "source": None,
    }


def median_wall(cmd: list[str], repeat: int, env: dict[str, str]) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - start)
        out = done.stdout + done.stderr
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cnnreg-zoo-scale-") as tmp:
        index = Path(tmp) / "zoo.json"
        index.write_text(json.dumps({"cnnreg_zoo": 1, "entries": [entry(i) for i in range(args.entries)]},
                                    indent=2, sort_keys=True) + "\n")
        env = dict(os.environ, CNNREG_ZOO=tmp, CNNREG_CACHE=str(Path(tmp) / "cache"), TF_CPP_MIN_LOG_LEVEL="3")
        cnnreg = [sys.executable, "-m", "cnnreg"]
        runs = {
            "python -c 'json.load(zoo.json)'": [sys.executable, "-c", f"import json; json.load(open({str(index)!r}))"],
            "cnnreg list weights": [*cnnreg, "list", "weights"],
            "cnnreg show lenet5.t<middle>": [*cnnreg, "show", f"lenet5.t{args.entries // 2}"],
            "cnnreg show lenet5.tx<middle> (unknown)": [*cnnreg, "show", f"lenet5.tx{args.entries // 2}"],
            "cnnreg list architectures": [*cnnreg, "list", "architectures"],
        }
        results = {}
        for label, cmd in runs.items():
            results[label] = median_wall(cmd, args.repeat, env)
        baseline = results["python -c 'json.load(zoo.json)'"][0]
        rows = sum(1 for line in results["cnnreg list weights"][1].splitlines() if line.startswith("lenet5.t"))
        print(f"cores: {os.cpu_count()}  python: {sys.version.split()[0]}  entries: {args.entries:,}  "
              f"zoo.json: {index.stat().st_size / 1e6:.1f} MB  repeats: {args.repeat} (median wall time)")
        for label, (seconds, _) in results.items():
            print(f"{label:42s} {seconds:7.2f} s   {seconds / baseline:5.2f}x json.load")
        print(f"rows listed: {rows:,}")
        suggestion = results["cnnreg show lenet5.tx<middle> (unknown)"][1].strip().splitlines()[-1]
        print(f"unknown name: {suggestion[:150]}")


if __name__ == "__main__":
    main()
