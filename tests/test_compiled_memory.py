"""XLA's memory plan of the compiled training step, and `cnnreg estimate --method compiled`.

This process runs Keras on TensorFlow; what needs JAX runs in one subprocess (a JAX start costs
seconds, each compile about 2), which checks the library and the CLI and prints what it saw as
one JSON line. The batch search is checked here too, on plans made up by a stand-in planner.
"""

from __future__ import annotations

import json
import math
import random

import pytest

from cnnreg.analysis.compiled import CompiledPlan, CompileOutOfMemory, StepPlanner, compiled_max_batch
from cnnreg.errors import CnnregError, ParameterError
from cnnreg.testing import run_cli

from runhelpers import one_line, script_on_backend  # noqa: E402

TINY = ("single_conv:filters=8,kernel=3", "--input-shape", "16x16x3", "--classes", "10")


def result_of(proc) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- on JAX: the plan, the search on real plans, the CLI (one subprocess) ----------------------

ON_JAX = r"""
import json, keras
from cnnreg.analysis import StepPlanner, compiled_max_batch, compiled_plan
from cnnreg.errors import ParameterError
from cnnreg.testing import run_cli

def tiny():  # 8x8x3 -> conv 4 (112 params) -> BN (8 trainable, 8 moving) -> GAP -> dense 5 (25)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3)(inputs))
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(x), name="tiny")

def nbytes(variables):  # the real buffers' sizes, not the shapes the planner passes
    return sum(v.value.nbytes for v in variables)

model = tiny()
planner = StepPlanner(model, optimizer="momentum")
out = {"trainable": nbytes(model.trainable_variables), "non_trainable": nbytes(model.non_trainable_variables),
       "slots": nbytes(model.optimizer.variables), "metrics": nbytes(model.metrics_variables)}
exact = planner.plan(8).total_bytes
before = planner.compiles
out["search"] = [compiled_max_batch(planner, exact)[0], planner.compiles - before]
before = planner.compiles
out["one_less"] = [compiled_max_batch(planner, exact - 1)[0], planner.compiles - before]
before = planner.compiles
out["none"] = [compiled_max_batch(planner, planner.plan(1).total_bytes - 1)[0], planner.compiles - before]
out["plans"] = {b: plan.to_dict() for b, plan in planner.plans.items()}
out["compiles"] = planner.compiles
out["adam"] = compiled_plan(tiny(), batch_size=1, optimizer="adam").to_dict()
said = []
told = StepPlanner(tiny(), progress=said.append)
told.plan(2), told.plan(2)
out["said"] = said
try:
    StepPlanner(tiny(), optimizer="adamm")
except ParameterError as exc:
    out["typo"] = str(exc)
for key, memory in (("json", "1MB"), ("text", "10KB"), ("no_gpu", None)):
    args = ["--device-memory", memory] if memory else ["--batch", "4"]
    r = run_cli("estimate", *TINY, "--method", "compiled", *args, *(["--json"] if key == "json" else []))
    out[key] = [r.exit_code, r.stdout, r.stderr]
print(json.dumps(out))
"""


def test_the_plan_and_estimate_on_jax(subprocess_env):
    seen = result_of(script_on_backend(f"TINY = {TINY!r}\n" + ON_JAX, "jax", subprocess_env))
    check_the_plan(seen)
    check_the_cli(seen)


def check_the_plan(seen):
    plans = {int(b): p for b, p in seen["plans"].items()}
    # the model's own variables, counted independently: 145 trainable float32 parameters
    assert seen["trainable"] == 145 * 4 and seen["non_trainable"] == 8 * 4
    # momentum: one slot a weight, plus the step counter and the learning rate
    assert seen["trainable"] < seen["slots"] <= seen["trainable"] + 16
    state = seen["trainable"] + seen["non_trainable"] + seen["slots"] + seen["metrics"]
    for b, plan in plans.items():
        assert plan["batch_size"] == b and plan["method"] == "compiled" and plan["platform"] == "cpu"
        assert plan["model"] == "tiny" and plan["precision"] == "float32" and plan["optimizer"] == "momentum"
        # arguments: the whole state, the inputs (8x8x3) and the one-hot targets (5), float32
        assert plan["argument_bytes"] == state + b * (8 * 8 * 3 + 5) * 4, (b, plan, state)
        assert plan["total_bytes"] == (plan["argument_bytes"] + plan["output_bytes"] + plan["temp_bytes"]
                                       - plan["alias_bytes"])
        assert 0 < plan["alias_bytes"] <= state  # the donated state is reused for the new state
        assert plan["compile_seconds"] > 0
    # device memory exactly the plan at 8: 8 fits (1 and 9 are compiled, 8 is not again), one byte
    # less 7 (7 is compiled); nothing twice
    assert seen["search"] == [8, 2] and seen["none"] == [0, 0]
    assert seen["one_less"][0] == 7 and seen["one_less"][1] <= 2
    assert {1, 7, 8, 9} <= set(plans) and seen["compiles"] == len(plans)
    temps = [plans[b]["temp_bytes"] for b in sorted(plans)]  # temporaries grow with the batch
    assert temps == sorted(temps) and len(set(temps)) == len(temps)
    # adam keeps two slots a weight, momentum one: exactly one more copy of the trainable weights
    assert seen["adam"]["optimizer"] == "adam"
    assert seen["adam"]["argument_bytes"] - plans[1]["argument_bytes"] == seen["trainable"]
    assert seen["typo"].startswith("unknown optimizer 'adamm'; did you mean 'adam'")
    # progress: a line as the one compile starts and one with what it gave (batch 2 is not compiled twice)
    started, ended = seen["said"]
    assert started == "compile 1: the training step of tiny at batch 2…"
    assert ended.startswith("compile 1: batch 2 needs ") and ended.endswith(" s)") and "(compiled in " in ended


def check_the_cli(seen):
    code, stdout, stderr = seen["json"]
    assert code == 0, stderr
    data = json.loads(stdout)
    assert set(data) == {"cnnreg", "method", "architecture", "input_shape", "num_classes", "precision", "optimizer",
                         "device", "max_batch_size", "batch_size", "fits", "budget", "remedies", "compiles"}
    assert data["method"] == "compiled" and data["remedies"] == [] and data["optimizer"] == "adam"
    assert data["device"] == {"name": None, "memory_bytes": 10**6, "detected": False, "given": "1MB"}
    budget = data["budget"]
    assert set(budget) == {"method", "model", "batch_size", "precision", "optimizer", "platform", "device",
                           "argument_bytes", "output_bytes", "temp_bytes", "alias_bytes", "generated_code_bytes",
                           "compile_seconds", "total_bytes"}
    assert budget["total_bytes"] == (budget["argument_bytes"] + budget["output_bytes"] + budget["temp_bytes"]
                                     - budget["alias_bytes"]) <= 10**6
    assert data["max_batch_size"] == data["batch_size"] == budget["batch_size"] > 1 and data["fits"] is True
    assert budget["platform"] == "cpu" and budget["method"] == "compiled" and 3 <= data["compiles"] <= 8

    code, stdout, stderr = seen["text"]  # batch 1 does not fit in 10 KB
    assert code == 0, stderr
    flat = " ".join(stdout.split())  # lines wrap at words to the terminal's width
    assert "largest batch that fits: none: batch 1 does not fit (compiled on cpu, 1 compile," in flat
    assert "batch 1 does not fit: needs" in flat and "--method analytic" in flat
    assert "XLA's plan of the training step at batch 1 (cpu)" in flat
    for term in ("arguments", "outputs", "temporaries", "aliased", "generated code", "total"):
        assert f"\n{term} " in stdout, stdout

    code, stdout, stderr = seen["no_gpu"]
    assert code == 2 and stdout == "" and stderr.startswith("error: no GPU detected: --device-memory is needed")


def test_every_optimizer_the_cost_model_names_has_a_keras_class():
    from cnnreg.analysis.compiled import KERAS_OPTIMIZERS
    from cnnreg.analysis.memory import OPTIMIZER_SLOTS

    assert set(KERAS_OPTIMIZERS) == set(OPTIMIZER_SLOTS)


def test_the_plan_needs_jax():
    import keras

    if keras.backend.backend() == "jax":
        pytest.skip("this process runs on JAX")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(CnnregError, match=r"needs the JAX backend .*--backend jax"):
        StepPlanner(model)


# --- the largest batch, on made-up plans ------------------------------------------------------


class MadeUp(StepPlanner):
    """A planner whose total at batch b is ``total(b)`` (no JAX); records what it compiled."""

    def __init__(self, total, *, out_of_memory_from=None):
        self.total, self.out_of_memory_from = total, out_of_memory_from
        self.plans, self.compiles, self.compiled = {}, 0, []

    def _compile(self, batch_size):
        self.compiled.append(batch_size)
        if self.out_of_memory_from and batch_size >= self.out_of_memory_from:
            raise CompileOutOfMemory("RESOURCE_EXHAUSTED")
        return CompiledPlan("m", batch_size, "float32", "adam", "cpu", "cpu", self.total(batch_size), 0, 0, 0, 0, 0.1)


def largest_by_counting(total, device):
    b = 0
    while total(b + 1) <= device:
        b += 1
    return b


def test_an_affine_plan_is_found_with_four_compiles():
    planner = MadeUp(lambda b: 10**8 + b * 3_000_000)
    device = 10**8 + 1000 * 3_000_000
    assert compiled_max_batch(planner, device) == (1000, planner)
    assert sorted(planner.compiled) == [1, 8, 1000, 1001] and planner.compiles == 4
    assert compiled_max_batch(planner, device - 1)[0] == 999 and planner.compiles == 5  # 999 is new
    assert compiled_max_batch(planner, "1KB")[0] == 0 and planner.compiles == 5


@pytest.mark.parametrize("shape", ["sqrt", "step", "sawtooth"])
def test_plans_off_the_line_are_bisected_and_no_batch_compiles_twice(shape):
    rng = random.Random(shape)
    for _ in range(200):
        fixed, per = rng.randint(10**6, 10**9), rng.randint(10**3, 10**8)
        total = {"sqrt": lambda b: fixed + b * per + int(0.3 * per * math.sqrt(b)),
                 "step": lambda b: fixed + b * per + (5 * per if b >= 20 else 0),
                 "sawtooth": lambda b: fixed + b * per + (b % 7) * per // 10}[shape]
        device = total(rng.randint(1, 3000)) + rng.randint(-per, per)
        planner = MadeUp(total)
        assert compiled_max_batch(planner, device)[0] == largest_by_counting(total, device)
        assert len(planner.compiled) == len(set(planner.compiled)) <= 12


def test_the_search_stops_at_its_limit_and_a_compile_out_of_memory_does_not_fit():
    planner = MadeUp(lambda b: 100 * b)
    assert compiled_max_batch(planner, 10**15)[0] == 2**20 and planner.compiles <= 4
    planner = MadeUp(lambda b: 100 * b, out_of_memory_from=50)
    assert compiled_max_batch(planner, 10**9)[0] == 49 and planner.compiles <= 30
    with pytest.raises(CompileOutOfMemory):
        planner.plan(60)
    with pytest.raises(ParameterError, match="does not grow with the batch"):
        compiled_max_batch(MadeUp(lambda b: 5000), 10**6)


# --- the CLI ----------------------------------------------------------------------------------


def test_method_mistakes_get_one_line():
    one_line(run_cli("estimate", *TINY, "--method", "compiled", "--backend", "tensorflow", "--device-memory", "1GB"),
             "--method compiled needs the JAX backend: --backend jax")
    one_line(run_cli("estimate", *TINY, "--method", "compiledd", "--device-memory", "1GB"),
             "unknown method 'compiledd'; did you mean 'compiled'?", "(valid: analytic, compiled)")
    assert "--method" in run_cli("estimate", "--help").stdout


def test_the_analytic_json_only_gains_its_method():
    result = run_cli("estimate", *TINY, "--device-memory", "1MB", "--batch", "4", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"cnnreg", "method", "architecture", "input_shape", "num_classes", "precision", "optimizer",
                         "device", "max_batch_size", "batch_size", "fits", "budget", "remedies"}
    assert data["method"] == "analytic" and "terms" in data["budget"]
