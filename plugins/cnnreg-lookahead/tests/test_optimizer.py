"""Lookahead's numbers against a NumPy reference (tests/numerics.py) through ``model.fit`` on
every backend: this process's, then JAX (the jitted ``stateless_apply``: the hard case) and
PyTorch in a new process each."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import numerics

#: Float32 steps against a float64 reference (measured: at most 2.2e-7).
TOLERANCE = 1e-6


def _check(result: dict) -> None:
    assert [case["spec"] for case in result["cases"]] == [spec for spec, *_ in numerics.CASES]
    for case, (_, _, _, _, _, steps) in zip(result["cases"], numerics.CASES):
        assert case["steps"] == steps, case
        assert case["max_error"] < TOLERANCE and case["slow_error"] < TOLERANCE, case
        assert case["iterations"] == case["inner_iterations"] == steps, case


def test_the_reference_is_lookahead_not_the_inner_optimizer_alone():
    """The hand-computed sequence (k 5, alpha 0.5, SGD lr 0.1, 12 steps) moves away from plain
    SGD at the first sync: the check below could not pass with the syncs missing."""
    lookahead = numerics.reference(0.1, 0.0, 5, 0.5, 12)
    plain = numerics.reference(0.1, 0.0, 5, 1.0, 12)  # alpha 1: the slow weights are the fast ones
    np.testing.assert_allclose(lookahead[3], plain[3])  # steps 1-4: the same
    assert np.max(np.abs(lookahead[4] - plain[4])) > 0.05  # step 5: half way back
    # step 5 by hand: the slow weights w0 plus half of what 5 SGD steps moved them
    w, g = numerics.W0.copy(), None
    for _ in range(5):
        g = 2 / 2 * numerics.X.T @ (numerics.X @ w - numerics.Y)
        w = w - 0.1 * g
    np.testing.assert_allclose(lookahead[4], numerics.W0 + 0.5 * (w - numerics.W0), rtol=1e-12)


def _this_backend() -> str:
    """The backend Keras will use here, read as Keras reads it, without importing keras (which
    takes seconds that the other processes can use): $KERAS_BACKEND, else keras.json's."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    try:
        return json.loads((home / "keras.json").read_text()).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


@pytest.fixture(scope="module")
def other_backends():
    """The JAX and PyTorch checks, started together in new processes (while this one checks
    its own backend): backend → the running process, or the reason it is skipped."""
    here = Path(__file__).resolve().parent
    path = os.pathsep.join([str(here.parent), *sys.path])
    started = {}
    for backend in ("jax", "torch"):
        if backend == _this_backend():
            started[backend] = "checked in this process"
        elif importlib.util.find_spec(backend) is None:
            started[backend] = f"{backend} is not installed"
        else:
            env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=path, CNNREG_LOAD_PLUGINS="")
            started[backend] = subprocess.Popen([sys.executable, str(here / "numerics.py")], stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, text=True, env=env)
    yield started
    for process in started.values():
        if isinstance(process, subprocess.Popen) and process.poll() is None:
            process.kill()
            process.communicate()


def test_matches_the_reference_on_this_backend(other_backends):
    _check(numerics.check())


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_matches_the_reference_on_other_backends(other_backends, backend):
    process = other_backends[backend]
    if isinstance(process, str):
        pytest.skip(process)
    try:
        out, err = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"the {backend} check took over 300 s: {err[-2000:]}")
    assert process.returncode == 0, err[-3000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["backend"] == backend
    _check(result)
