"""`cnnreg lr-find` and `cnnreg run --lr auto`: the range test's arithmetic by hand, its stop
rule and suggestion, the JSON and plot, the manifest record that rerun replays, one-line errors.

The runs are tiny (mlp_bn on 8x8 digits, 30 steps; one epoch for --lr auto).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from cnnreg.testing import run_cli
from cnnreg.training import lr_find

FAST = ["--dataset", "digits:size=8"]


# --- the arithmetic, without a model --------------------------------------------------------------


def test_schedule_is_geometric_from_start_to_end():
    lrs = lr_find.schedule(1e-7, 10.0, 30)
    assert len(lrs) == 30 and lrs[0] == 1e-7 and lrs[-1] == pytest.approx(10.0, rel=1e-12)
    ratios = np.array(lrs[1:]) / np.array(lrs[:-1])
    assert np.allclose(ratios, 1e8 ** (1 / 29), rtol=1e-12)  # the same factor every step


def test_smoothing_is_an_ema_with_bias_correction():
    # beta 0.5 by hand: a1 = 0.5 → 0.5/0.5 = 1; a2 = 0.25 + 1 = 1.25 → 1.25/0.75; a3 = 0.625 + 1.5 → 2.125/0.875
    assert lr_find.smooth([1.0, 2.0, 3.0], beta=0.5) == pytest.approx([1.0, 1.25 / 0.75, 2.125 / 0.875])
    # the first smoothed value is the first loss whatever beta (the correction removes the zero start)
    assert lr_find.smooth([2.3, 2.0], beta=0.98)[0] == pytest.approx(2.3)


def test_sweep_stops_when_the_smoothed_loss_passes_four_times_its_minimum():
    lrs = lr_find.schedule(1e-4, 1.0, 50)
    # loss 1 falling to 0.5 until lr 1e-2, then 1000: a blow-up the smoothed loss notices at once
    def loss_at(lr):
        return 1000.0 if lr > 1e-2 else 1.0 - 0.5 * math.log10(lr / 1e-4) / 2

    losses, smoothed, reason = lr_find.sweep(loss_at, lrs)
    assert reason == "diverged"
    expected = lr_find.smooth([loss_at(lr) for lr in lrs])
    stop = next(i for i in range(len(lrs)) if expected[i] > 4 * min(expected[: i + 1]))
    assert len(losses) == len(smoothed) == stop + 1  # the step that diverged is recorded, no more
    assert smoothed == pytest.approx(expected[: stop + 1])
    assert lrs[stop] > 1e-2 and lrs[stop - 1] <= 1e-2 * 1.21  # within a step or two of the blow-up


def test_sweep_stops_at_a_loss_that_is_not_finite_without_recording_it():
    seen = []

    def loss_at(lr):
        seen.append(lr)
        return float("nan") if len(seen) == 7 else 2.0

    losses, smoothed, reason = lr_find.sweep(loss_at, lr_find.schedule(1e-3, 1.0, 20))
    assert reason == "not finite" and losses == [2.0] * 6 and len(smoothed) == 6 and len(seen) == 7
    losses, _, reason = lr_find.sweep(lambda lr: 2.0, lr_find.schedule(1e-3, 1.0, 20))
    assert reason is None and len(losses) == 20


def test_suggestion_is_the_steepest_descent_against_log_lr():
    lrs = lr_find.schedule(1e-6, 1.0, 100)
    x = np.log10(lrs)
    # a smooth drop centred on 1e-3, then a rise: steepest at 1e-3, minimum near 3e-2
    curve = list(2.0 - np.tanh(2 * (x + 3)) + 3 * np.maximum(0, x + 1.5) ** 2)
    steep, low, problem = lr_find.suggest(lrs, curve, max_steps=100, stopped_early=False)
    assert problem == "" and abs(x[steep] + 3) <= 6 / 99  # within one step (6 decades over 99 steps)
    assert low == int(np.argmin(curve))
    # the first tenth is not searched: a steep start there is noise of the unsmoothed first steps
    early = [10.0 if i < 5 else value for i, value in enumerate(curve)]
    assert lr_find.suggest(lrs, early, max_steps=100, stopped_early=False)[0] == steep
    # a loss that never falls gives no suggestion, and says why
    flat = [2.3 + 0.001 * i for i in range(100)]
    steep, _, problem = lr_find.suggest(lrs, flat, max_steps=100, stopped_early=False)
    assert steep is None and "never fell" in problem
    # too few points before the divergence
    steep, low, problem = lr_find.suggest(lrs[:4], curve[:4], max_steps=100, stopped_early=True)
    assert steep is None and low is None and "too few" in problem


# --- on a model -------------------------------------------------------------------------------------


def test_lr_find_json_plot_and_suggestion_in_range(tmp_path):
    out = tmp_path / "out"
    result = run_cli("lr-find", "mlp_bn", *FAST, "--steps", "30", "--json", "--out", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"cnnreg", "suggested_lr", "min_loss_lr", "min_over_10", "lrs", "losses", "smoothed", "stopped_early",
            "steps", "max_steps", "start", "end", "method", "stop_reason", "architecture", "dataset", "optimizer",
            "batch_size", "seed", "beta", "diverge", "files"} <= set(data)
    assert data["architecture"] == "mlp_bn" and data["dataset"] == "digits:size=8" and data["max_steps"] == 30
    n = data["steps"]
    assert len(data["lrs"]) == len(data["losses"]) == len(data["smoothed"]) == n and 10 <= n <= 30
    assert data["lrs"] == pytest.approx(lr_find.schedule(1e-7, 10.0, 30)[:n], rel=1e-12)
    assert data["smoothed"] == pytest.approx(lr_find.smooth(data["losses"]), rel=1e-9)
    assert data["stopped_early"] == (n < 30 or data["stop_reason"] is not None)
    assert 1e-7 <= data["suggested_lr"] <= 10 and data["suggested_lr"] == data["lrs"][data["suggested_index"]]
    assert data["min_over_10"] == pytest.approx(data["min_loss_lr"] / 10)
    # the loss did fall: at the minimum it is below the first steps' (about ln 10 for 10 classes)
    assert data["min_loss"] < data["smoothed"][3]
    plot = out / "lr_find.png"
    assert data["files"] == {"plot": str(plot)} and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*tmp*"))  # written through a temporary name


def test_sweep_to_1e3_stops_at_divergence():
    result = run_cli("lr-find", "mlp_bn", *FAST, "--steps", "30", "--end", "1e3", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["stopped_early"] and data["stop_reason"] in ("diverged", "not finite") and data["steps"] < 30
    if data["stop_reason"] == "diverged":
        assert data["smoothed"][-1] > 4 * min(data["smoothed"])
    assert data["lrs"][-1] < 1e3


def test_run_lr_auto_is_recorded_and_rerun_replays_the_number(tmp_path):
    first, second = tmp_path / "auto", tmp_path / "again"
    result = run_cli("run", "mlp_bn", *FAST, "--epochs", "1", "--lr", "auto", "--run-dir", str(first))
    assert result.exit_code == 0, result.output
    line = next(l for l in result.stdout.splitlines() if l.startswith("--lr auto:"))
    manifest = json.loads((first / "run.json").read_text())
    found = manifest["config"]["lr"]
    record = manifest["lr_find"]
    assert isinstance(found, float) and found == record["lr"] == float(f"{record['suggested_lr']:.3g}")
    assert 1e-7 <= found <= 10 and f"training with lr {found:g}" in line
    assert record["max_steps"] == 100 and record["method"].startswith("steepest") and "lrs" not in record
    assert manifest["resolved"]["optimizer"]["params"]["learning_rate"] == found
    assert (first / "lr_find.png").read_bytes()[:4] == b"\x89PNG"
    # rerun trains with the number found, without a search, and from the same initial weights:
    # the range test left the model and the random states as they were
    result = run_cli("rerun", str(first), "--run-dir", str(second), "--quiet")
    assert result.exit_code == 0, result.output
    replayed = json.loads((second / "run.json").read_text())
    assert replayed["config"]["lr"] == found and replayed["lr_find"] is None
    assert not (second / "lr_find.png").exists()
    rows = [(first / "history.csv").read_text().splitlines(), (second / "history.csv").read_text().splitlines()]
    values = [[[float(v) for v in row.split(",")[2:-1]] for row in table[1:]] for table in rows]
    assert np.allclose(values[0], values[1], rtol=0, atol=1e-6), rows


def test_dry_run_says_it_would_search_and_does_not():
    result = run_cli("run", "mlp_bn", *FAST, "--lr", "auto", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would choose the learning rate" in result.stdout and "learning_rate=auto" in result.stdout
    assert "steepest descent at" not in result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["lr-find", "mlp_bn", "--start", "1", "--end", "0.1"], "--end must be larger than --start"),
        (["lr-find", "mlp_bn", "--start", "0"], "--start must be > 0"),
        (["lr-find", "mlp_bn", "--end", "inf"], "--end must be a finite number > 0"),
        (["lr-find", "mlp_bn", "--steps", "5"], "--steps must be from 10 to 1000 (got 5)"),
        (["lr-find", "mlp_bn", "--steps", "5000"], "--steps must be from 10 to 1000 (got 5000)"),
        (["lr-find", "mlp_bb"], "did you mean 'mlp_bn'?"),
        (["lr-find", "mlp_bn", "--optimizer", "sgdd"], "did you mean 'sgd'?"),
        (["run", "mlp_bn", "--lr", "atuo"], "--lr must be a number > 0 or auto (got 'atuo'); did you mean 'auto'?"),
        (["run", "mlp_bn", "--lr", "-1"], "--lr must be > 0"),
    ],
)
def test_mistakes_are_one_line(args, expected):
    result = run_cli(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], result.output


def test_rerun_set_lr_auto_is_accepted_by_the_config():
    from cnnreg.spec import coerce
    import typing

    from cnnreg.training.config import RunConfig

    hint = typing.get_type_hints(RunConfig)["lr"]
    assert coerce("auto", hint, where="--set lr") == "auto" and coerce("0.01", hint, where="--set lr") == 0.01
    RunConfig("mlp_bn", lr="auto").validate()
