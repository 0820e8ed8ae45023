"""`cnnreg attack`: robust accuracy per eps, the arrays behind it, the figures, one-line errors.

One tiny run (mlp_bn on 8x8 digits) is trained per module; the attacks on it are few and short.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cnnreg.testing import run_cli

FAST = ["--dataset", "digits:size=8", "--batch-size", "64", "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict]:
    """A trained run and its `cnnreg evaluate --json` evaluation."""
    run_dir = tmp_path_factory.mktemp("attack") / "run"
    result = run_cli("run", "mlp_bn", "--epochs", "2", *FAST, "--run-dir", str(run_dir))
    assert result.exit_code == 0, result.output
    evaluation = run_cli("evaluate", str(run_dir), "--json")
    assert evaluation.exit_code == 0, evaluation.output
    return run_dir, json.loads(evaluation.stdout)["evaluation"]


def test_json_npz_and_figures_agree_with_evaluate(trained, tmp_path):
    run_dir, evaluation = trained
    out = tmp_path / "out"
    result = run_cli("attack", str(run_dir), "--attack", "pgd:steps=3", "--eps", "0.1,0,2/255,0.05",
                     "--json", "--out", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["cnnreg"] and data["attack"] == "pgd:steps=3" and data["norm"] == "inf"
    assert data["label"].startswith("PGD L∞ eps 0.1") and data["universal"] is False
    assert data["split"] == "test" and data["dataset"] == "digits:size=8" and data["examples"] == evaluation["examples"]
    eps = [row["eps"] for row in data["results"]]
    assert eps == sorted(eps) == [0.0, 2 / 255, 0.05, 0.1]  # sorted; fractions read exactly
    accuracy = [row["accuracy"] for row in data["results"]]
    # eps 0 is the clean test accuracy, the same figure `cnnreg evaluate` gives
    assert accuracy[0] == data["clean_accuracy"] == pytest.approx(evaluation["accuracy"], abs=1e-12)
    # robust accuracy never rises with eps (one example of slack for PGD's random start)
    assert all(b <= a + 1 / data["examples"] for a, b in zip(accuracy, accuracy[1:])), accuracy
    assert accuracy[-1] < accuracy[0] - 0.2, "PGD at eps 0.1 should hurt an undefended model"
    for row in data["results"]:
        assert set(row) >= {"eps", "accuracy", "label", "mean_confidence", "changed", "mean_norm"}
        assert row["mean_norm"] <= row["eps"]  # measured exactly: float32 rounding never oversteps

    # the arrays: every reported accuracy can be recomputed from them
    with np.load(data["files"]["npz"]) as npz:
        arrays = {key: npz[key] for key in npz.files}
    n, e = data["examples"], len(eps)
    x, y, x_adv, pred = arrays["x"], arrays["y"], arrays["x_adv"], arrays["pred"]
    assert x.shape == (n, 8, 8, 1) and y.shape == (n,) and arrays["eps"].tolist() == eps
    assert x_adv.shape == (e, n, 8, 8, 1) and pred.shape == (e, n)
    assert x.min() >= 0 and x.max() <= 1 and x_adv.min() >= 0 and x_adv.max() <= 1
    for k, value in enumerate(eps):
        assert np.abs(x_adv[k].astype("float64") - x).max() <= value
        assert float(np.mean(pred[k] == y)) == accuracy[k]
    assert np.array_equal(x_adv[0], x) and np.array_equal(arrays["clean_pred"], pred[0])
    # and they are the model's predictions on those arrays, through its own preprocessing
    from cnnreg.training.saved import trained_run

    model = trained_run(run_dir)
    probs = model.load_model().predict(model.preprocess(x_adv[-1] * np.float32(255)), verbose=0)
    assert np.array_equal(np.asarray(probs).argmax(axis=1), pred[-1])

    # the figures
    from PIL import Image

    for key in ("figure", "curve"):
        path = Path(data["files"][key])
        assert path.parent == out and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(path) as image:
            assert image.width >= 500 and image.height >= 400, image.size
    assert Path(data["files"]["figure"]).name == "adversarial.png"
    assert not list(out.glob(".*tmp*")), "temporary files left behind"


def test_table_defaults_and_universal(trained):
    run_dir, _ = trained
    result = run_cli("attack", str(run_dir), "--attack", "universal:steps=3", "--limit", "40")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("attack universal:steps=3: run ") and "(test, 40 examples)" in lines[0]
    assert any(line.startswith("0 ") for line in lines), result.stdout  # eps 0, then the spec's 8/255
    assert any(line.startswith("0.0314 (8/255)") for line in lines), result.stdout
    assert (run_dir / "robustness.png").exists() and f"robustness curve: {run_dir / 'robustness.png'}" in result.stdout
    assert "adversarial.png" not in result.stdout  # only with --out


def test_library_progress_and_no_clean_eps(trained):
    from cnnreg.adversarial.robustness import robustness
    from cnnreg.training.saved import trained_run

    run_dir, evaluation = trained
    calls: list[tuple[int, int, str]] = []
    result = robustness(trained_run(run_dir), "fgsm", [0.05], limit=30, batch_size=16,
                        progress=lambda done, total, what: calls.append((done, total, what)))
    assert [r["eps"] for r in result["results"]] == [0.05] and result["examples"] == 30
    assert 0 <= result["results"][0]["accuracy"] <= result["clean_accuracy"]
    assert calls[-1][0] == calls[-1][1] == 60 and [c[0] for c in calls] == sorted(c[0] for c in calls)
    assert {c[2] for c in calls} == {"clean", "eps 0.05"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--attack", "pgdd"], "did you mean 'pgd'"),
        (["--eps", "0,-0.1"], "eps must be a finite number >= 0"),
        (["--eps", "0,8"], "did you mean 8/255"),
        (["--eps", "0,a"], "--eps must be a number (got 'a')"),
        (["--eps", "0,,0.1"], "comma-separated list of numbers"),
        (["--eps", "8/0"], "divides by zero"),
        (["--limit", "0"], "--limit must be >= 1"),
        (["--attack", "fgsm:norm=3"], "norm"),
    ],
)
def test_mistakes_are_one_line(trained, args, expected):
    run_dir, _ = trained
    result = run_cli("attack", str(run_dir), *args)
    assert result.exit_code == 2, result.output
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_out_that_is_a_file_is_one_line(trained, tmp_path):
    run_dir, _ = trained
    (tmp_path / "file").write_text("")
    result = run_cli("attack", str(run_dir), "--out", str(tmp_path / "file"))
    assert result.exit_code == 2 and "is a file, not a folder" in result.stderr, result.output


def test_not_a_run_is_one_line(tmp_path):
    result = run_cli("attack", str(tmp_path))
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    unknown = run_cli("attack", "lenet5.digitz")
    assert unknown.exit_code == 2 and "neither a run directory nor a weights name" in unknown.stderr, unknown.stderr


def test_choose_examples_prefers_flipped_inputs_of_different_classes():
    from cnnreg.adversarial.robustness import choose_examples

    y = np.array([0, 0, 1, 1, 2, 2, 3])
    clean = np.array([0, 0, 1, 1, 2, 0, 3])  # example 5 was wrong already
    adv = np.array([1, 1, 1, 0, 2, 1, 3])  # 0, 1 and 3 flipped; 5 changed
    assert choose_examples(y, clean, adv, rows=4) == [0, 3, 1, 5]
    assert choose_examples(y, clean, clean, rows=2) == [0, 1]


@pytest.mark.parametrize("args", [["attack", "--help"], ["attack", "no-such-run", "--attack", "pgdd"]])
def test_help_and_mistakes_import_no_heavy_framework(args, subprocess_env):
    import subprocess
    import sys

    from test_fast_start import HEAVY, PROBE

    proc = subprocess.run([sys.executable, "-c", PROBE.format(heavy=set(HEAVY)), *args], capture_output=True,
                          text=True, env=subprocess_env, timeout=60)
    line = [l for l in proc.stderr.splitlines() if l.startswith("HEAVY=")]
    assert line and json.loads(line[0][len("HEAVY="):]) == [], proc.stderr
