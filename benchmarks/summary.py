"""`cnnreg summary resnet152` next to a plain Keras script that builds ResNet152 and prints summary().

Run by hand:  python benchmarks/summary.py [--repeat 3] [--breakdown]
Target: cnnreg's median wall time <= 1.2 × the plain script's (both in fresh processes, run
interleaved, output to a pipe, same backend). --breakdown also times cnnreg's phases in this process.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

PLAIN = """
import keras
model = keras.applications.ResNet152(weights=None)
model.summary()
"""


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds user + system) of one run of ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr.decode()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


def breakdown() -> None:
    """Phases of `cnnreg summary resnet152` in this process (import, build, summarize, render)."""
    import io

    from rich.console import Console

    start = time.perf_counter()
    import keras  # noqa: F401

    from cnnreg.analysis import summarize
    from cnnreg.cli import analysis, render
    t_import = time.perf_counter()
    target = analysis._resolve("resnet152", None, None)
    model = target.component.load()(input_shape=target.input_shape, num_classes=target.num_classes)
    t_build = time.perf_counter()
    summary = summarize(model, precision="float32")
    t_summary = time.perf_counter()
    render.console = Console(file=io.StringIO(), highlight=False, soft_wrap=False)
    render.print_wide(analysis._layer_table(summary))
    render.print_wide(analysis._footer(summary))
    t_render = time.perf_counter()
    print(f"  import keras + cnnreg {t_import - start:6.2f} s")
    print(f"  build resnet152       {t_build - t_import:6.2f} s")
    print(f"  summarize             {t_summary - t_build:6.2f} s  ({len(summary.rows)} rows)")
    print(f"  render table          {t_render - t_summary:6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--breakdown", action="store_true", help="also time cnnreg's phases in-process")
    args = parser.parse_args()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CNNREG_LOAD_PLUGINS="")
    runs = {
        "keras ResNet152 + summary()": [sys.executable, "-c", PLAIN],
        "cnnreg summary resnet152": [sys.executable, "-m", "cnnreg", "summary", "resnet152"],
    }
    # Interleaved, so a change in machine load (shared cores) hits both sides alike; CPU time
    # (user + system) is reported too, as it moves less than wall time on a busy machine.
    walls: dict[str, list[float]] = {name: [] for name in runs}
    cpus: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeat):
        for name, cmd in runs.items():
            seconds, cpu = timed(cmd, env)
            walls[name].append(seconds)
            cpus[name].append(cpu)
    plain_name, ours = list(runs)
    print(f"cores: {os.cpu_count()}  python: {sys.version.split()[0]}  repeats: {args.repeat} (medians)")
    for name in runs:
        each = ", ".join(f"{t:.2f}" for t in walls[name])
        print(f"{name:30s} wall {statistics.median(walls[name]):6.2f} s ({each})  "
              f"cpu {statistics.median(cpus[name]):6.2f} s")
    ratio = statistics.median(walls[ours]) / statistics.median(walls[plain_name])
    cpu_ratio = statistics.median(cpus[ours]) / statistics.median(cpus[plain_name])
    print(f"ratio (wall) {ratio:.2f}, ratio (cpu) {cpu_ratio:.2f}, target <= 1.20: "
          f"{'ok' if ratio <= 1.2 else 'TOO SLOW'}")
    if args.breakdown:
        print("cnnreg phases (in-process):")
        breakdown()


if __name__ == "__main__":
    main()
