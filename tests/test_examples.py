"""The CPU-sized examples run and print what the lecture says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize(
    "script, expected",
    [
        ("batchnorm_mlp.py", "total 271,346; trainable 268,978; non-trainable 2,368"),
        ("clipping.py", "--clip norm=1         [0.9, 100] -> [0.00899964 0.999959"),
        ("glorot_vs_he.py", "he_normal"),
    ],
)
def test_example_runs(script, expected, subprocess_env):
    proc = subprocess.run([sys.executable, str(EXAMPLES / script)], capture_output=True, text=True,
                          env=subprocess_env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert expected in proc.stdout


def test_tf_flowers_recipe_says_how_to_get_the_data_offline(subprocess_env, tmp_path):
    env = dict(subprocess_env, TFDS_DATA_DIR=str(tmp_path / "tfds"))
    proc = subprocess.run([sys.executable, str(EXAMPLES / "tf_flowers_transfer.py")], capture_output=True, text=True,
                          env=env, timeout=300)
    if proc.returncode == 0:
        pytest.skip("tf_flowers and the Xception weights are available here")
    assert proc.returncode == 2 and "cannot run the recipe here" in proc.stderr
    assert "tf_flowers" in proc.stderr
