"""Issue 12, section 5: a plugin cannot break or take a built-in name.

Precedence of built-in names, plugin names in CNNREG_*_PLUGINS that do not exist, a bad
KERAS_BACKEND, finite numbers everywhere (with property tests over random specs) and a missing
HOME.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import types
import warnings
from typing import Annotated, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnnreg
from cnnreg import testing
from cnnreg.errors import AmbiguousComponentError, CnnregError, ParameterError
from cnnreg.plugins import CnnregPluginWarning, Host
from cnnreg.registry import KINDS
from cnnreg.spec import AllowInf, Range, coerce


def their_resnet34(input_shape=None, num_classes: int = 10, *, include_top: bool = True, width: int = 1):
    """Their ResNet-34."""
    return ("theirs", width)


def their_init(gain: float = 1.0):
    """Their initialiser."""
    return ("their_init", gain)


def shadowing_plugin(name: str = "shadowplug"):
    """A plugin that registers a built-in's name (resnet34), a name equal to a built-in alias
    (kaiming_normal) and aliases equal to built-in names (lenet, glorot_uniform)."""
    module = types.ModuleType(name)

    @cnnreg.hookimpl
    def register_architectures(registry):
        registry.add("resnet34", their_resnet34, aliases=("lenet",))
        registry.add("theirnet", their_resnet34, summary="theirs", aliases=("alexnet", "tn"))

    @cnnreg.hookimpl
    def register_initialisers(registry):
        registry.add("kaiming_normal", their_init, aliases=("glorot_uniform",))

    module.register_architectures = register_architectures
    module.register_initialisers = register_initialisers
    return module


# --- 1. precedence: built-ins keep their names ------------------------------------------------


def test_builtin_keeps_its_name_and_the_plugin_is_reachable_qualified():
    with testing.plugin(shadowing_plugin(), distribution="test-plugin") as registry:
        builtin = registry.get("architecture", "resnet34")
        assert builtin.provider == "cnnreg" and builtin.builtin and builtin.shadowed_by is None
        theirs = registry.get("architecture", "test-plugin/resnet34")
        assert theirs.provider == "test-plugin" and theirs.shadowed_by == "cnnreg"
        assert theirs.shadowed_aliases == ("lenet",)
        assert registry.get("architecture", "RESNET34").provider == "cnnreg"
        assert registry.get("architecture", "cnnreg/resnet34") is builtin
        # a plugin alias equal to a built-in name, and a plugin name equal to a built-in alias
        assert registry.get("architecture", "lenet").name == "lenet5"
        assert registry.get("architecture", "alexnet").provider == "cnnreg"
        assert registry.get("architecture", "tn").name == "theirnet"  # its own alias still works
        assert registry.get("initialiser", "kaiming_normal").name == "he_normal"
        assert registry.get("initialiser", "glorot_uniform").provider == "cnnreg"
        assert cnnreg.build("initialiser", "test-plugin/kaiming_normal:gain=2") == ("their_init", 2.0)
        _, params = registry.resolve("architecture", "test-plugin/resnet34:width=2")
        assert params == {"width": 2}


def test_run_resolves_the_builtin_when_a_plugin_registers_the_same_name():
    from cnnreg.training.config import RunConfig
    from cnnreg.training.config import resolve

    with testing.plugin(shadowing_plugin(), distribution="test-plugin"):
        plan = resolve(RunConfig("resnet34", dataset="digits", epochs=1))
        assert plan.architecture.component.provider == "cnnreg"
        plan = resolve(RunConfig("test-plugin/resnet34:width=3", dataset="digits", epochs=1))
        assert plan.architecture.component.provider == "test-plugin"
        assert plan.architecture.params == {"width": 3}


def test_list_plugins_and_json_mark_the_shadowed_component():
    with testing.plugin(shadowing_plugin(), distribution="test-plugin"):
        listed = testing.run_cli("list", "architectures", "--filter", "*resnet34*")
        assert listed.exit_code == 0, listed.stderr
        assert "test-plugin/resnet34*" in listed.stdout
        assert "* shadowed: a built-in has this name" in listed.stdout
        data = json.loads(testing.run_cli("list", "architectures", "--json").stdout)["components"]
        by_name = {c["qualified_name"]: c for c in data}
        assert by_name["test-plugin/resnet34"]["shadowed_by"] == "cnnreg"
        assert by_name["test-plugin/resnet34"]["shadowed_aliases"] == ["lenet"]
        assert by_name["test-plugin/theirnet"]["shadowed_by"] is None
        assert by_name["test-plugin/theirnet"]["shadowed_aliases"] == ["alexnet"]
        assert by_name["cnnreg/resnet34"]["builtin"] and by_name["cnnreg/resnet34"]["shadowed_by"] is None

        plugins = testing.run_cli("plugins")
        assert plugins.exit_code == 0, plugins.stderr
        text = " ".join(plugins.stdout.split())
        assert "2 components shadowed by a built-in: resnet34 (use test-plugin/resnet34), " \
               "kaiming_normal (use test-plugin/kaiming_normal)" in text
        assert "alias" in text and "lenet (of test-plugin/resnet34)" in text
        info = {p["name"]: p for p in json.loads(testing.run_cli("plugins", "--json").stdout)["plugins"]}
        assert {"kind": "architecture", "name": "resnet34", "alias": False, "use": "test-plugin/resnet34"} \
            in info["shadowplug"]["shadowed"]
        assert info["architectures"]["shadowed"] == []

        shown = json.loads(testing.run_cli("show", "resnet34", "--json").stdout)["component"]
        assert shown["provider"] == "cnnreg"
        shown = json.loads(testing.run_cli("show", "test-plugin/resnet34", "--json").stdout)["component"]
        assert shown["provider"] == "test-plugin" and shown["shadowed_by"] == "cnnreg"


def test_two_plugins_with_a_builtin_name_still_mean_the_builtin_but_their_own_name_is_ambiguous():
    with testing.plugin(shadowing_plugin("one"), distribution="pkg-one"):
        with testing.plugin(shadowing_plugin("two"), distribution="pkg-two") as registry:
            assert registry.get("architecture", "resnet34").provider == "cnnreg"
            assert registry.get("architecture", "pkg-two/resnet34").provider == "pkg-two"
            with pytest.raises(AmbiguousComponentError) as info:
                registry.get("architecture", "theirnet")
            assert str(info.value) == (
                "architecture name 'theirnet' is ambiguous: it is registered by several plugins; "
                "use one of pkg-one/theirnet, pkg-two/theirnet"
            )


def test_a_plugin_calling_itself_cnnreg_cannot_replace_a_builtin():
    with testing.plugin(shadowing_plugin(), distribution="cnnreg") as registry:
        assert registry.get("architecture", "resnet34").builtin
        assert registry.get("architecture", "cnnreg/resnet34").builtin


# --- 2. CNNREG_DISABLE_PLUGINS / CNNREG_LOAD_PLUGINS naming no plugin ---------------------------


def _load_with(monkeypatch, **env) -> list[str]:
    """Load a host with one simulated installed plugin (envplug, cnnreg-envplug); its warnings."""
    from cnnreg.plugins import EntryPointInfo

    for name in ("CNNREG_DISABLE_PLUGINS", "CNNREG_LOAD_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    point = EntryPointInfo("envplug", "envplug", "cnnreg-envplug", "1.0", obj=types.ModuleType("envplug"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Host(entry_points=[point])
    return [str(w.message) for w in caught if issubclass(w.category, CnnregPluginWarning)]


def test_unknown_plugin_name_in_the_variables_warns_once_naming_it(monkeypatch):
    lines = _load_with(monkeypatch, CNNREG_DISABLE_PLUGINS="cnnreg-envplgu,cnnreg_envplgu")
    assert lines == [
        "CNNREG_DISABLE_PLUGINS names 'cnnreg-envplgu', but no plugin is called that; "
        "did you mean 'cnnreg-envplug'? (installed: cnnreg-envplug, envplug)"
    ]
    lines = _load_with(monkeypatch, CNNREG_LOAD_PLUGINS="nothing-like-it")
    assert len(lines) == 1 and "CNNREG_LOAD_PLUGINS names 'nothing-like-it'" in lines[0]
    assert "did you mean" not in lines[0]


@pytest.mark.parametrize(
    "env",
    [
        {"CNNREG_LOAD_PLUGINS": ""},  # built-ins only: nothing to warn about
        {"CNNREG_LOAD_PLUGINS": "envplug"},
        {"CNNREG_DISABLE_PLUGINS": "cnnreg_envplug"},  # distribution name, '_' for '-'
        {"CNNREG_DISABLE_PLUGINS": "initialisers, cnnreg", "CNNREG_LOAD_PLUGINS": "Datasets,envplug"},
    ],
)
def test_existing_names_warn_nothing(monkeypatch, env):
    assert _load_with(monkeypatch, **env) == []


def test_unknown_plugin_name_goes_through_the_cli_reporter(monkeypatch):
    monkeypatch.setenv("CNNREG_LOAD_PLUGINS", "no-such-plugin")
    result = testing.run_cli("list", "initialisers")
    assert result.exit_code == 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: CNNREG_LOAD_PLUGINS names 'no-such-plugin'")


# --- 3. KERAS_BACKEND ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("nonsense", "the KERAS_BACKEND environment variable is 'nonsense', not a Keras backend "
                     "(valid: jax, tensorflow, torch)"),
        ("tensorflo", "did you mean 'tensorflow'?"),
    ],
)
def test_bad_keras_backend_names_the_variable(monkeypatch, value, expected):
    from cnnreg.backends import select

    monkeypatch.setenv("KERAS_BACKEND", value)
    with pytest.raises(CnnregError) as info:
        select(activate=False)
    assert expected in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(CnnregError, match=r"^unknown backend 'jx'; did you mean 'jax'\?"):
        select("jx", activate=False)  # --backend (or a manifest): not the variable


def test_bad_keras_backend_is_one_line_even_where_keras_is_imported_directly(tmp_path, subprocess_env):
    """`data show --augment` imports keras without selecting a backend first: the import check
    still makes it our line. `list` never needs the backend."""
    env = dict(subprocess_env, KERAS_BACKEND="nonsense")
    proc = subprocess.run(
        [sys.executable, "-m", "cnnreg", "data", "show", "digits", "--augment", "flip", "-o", str(tmp_path / "g.png")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        "error: the KERAS_BACKEND environment variable is 'nonsense', not a Keras backend "
        "(valid: jax, tensorflow, torch); set it to one of them, or unset it for tensorflow"
    ]
    assert subprocess.run([sys.executable, "-m", "cnnreg", "list", "datasets"], capture_output=True,
                          env=env, timeout=120).returncode == 0


# --- 4. numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"seed": -1}, "--seed must be an integer from 0 to 4294967295 (2**32 - 1) (got -1)"),
        ({"seed": 2**32}, "--seed must be an integer from 0"),
        ({"lr": math.inf}, "--lr must be a finite number > 0 (got inf)"),
        ({"lr": math.nan}, "--lr must be a finite number > 0 (got nan)"),
        ({"lr": 1e39}, "--lr must be a finite number > 0 (got 1e+39)"),
        ({"lr": -0.1}, "--lr must be > 0 (got -0.1)"),
        ({"fine_tune_lr": -math.inf}, "--fine-tune-lr must be a finite number > 0 (got -inf)"),
        ({"epochs": 10**30}, "--epochs must be at most 2147483647"),
        ({"batch_size": 2**40}, "--batch-size must be at most 2147483647"),
        ({"early_stop": 0}, "--early-stop must be >= 1 epoch of patience (got 0)"),
        ({"epochs": "3"}, "--epochs must be an integer (got '3')"),  # a hand-edited run.json
        ({"bn_momentum": "nan"}, "--bn-momentum must be auto or a number in (0, 1) (got nan)"),
    ],
)
def test_run_config_numbers_are_checked_in_one_line(changes, message):
    from cnnreg.training.config import RunConfig

    with pytest.raises(ParameterError) as info:
        RunConfig("lenet5", **changes).validate()
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "args, line",
    [
        (("--seed", "-1"), "error: --seed must be an integer from 0 to 4294967295 (2**32 - 1) (got -1)"),
        (("--lr", "inf"), "error: --lr must be a finite number > 0 (got inf)"),
        (("--clip", "norm=inf"), "error: --clip norm must be a finite number > 0 (got inf)"),
        (("--clip", "value=nan"), "error: --clip value must be a finite number > 0 (got nan)"),
        (("--clip", "global_norm=1e39"), "error: --clip global_norm must be a finite number > 0 (got 1e39)"),
        (("--init", "random_normal:mean=-inf"),
         "error: initialiser 'random_normal' parameter 'mean' must be a finite number in [-1e+20, 1e+20] (got -inf)"),
        (("--init", "truncated_normal:stddev=inf"),
         "error: initialiser 'truncated_normal' parameter 'stddev' must be a finite number in (0, 1e+20] (got inf)"),
        (("--init", "random_uniform:limit=1e309"),
         "error: initialiser 'random_uniform' parameter 'limit' must be a finite number in (0, 1e+20] (got 1e309)"),
        (("--init", "he_normal:seed=1e30"), "error: initialiser 'he_normal' parameter 'seed' must be in [0, 4294967295] (got 1e30)"),
        (("--reg", "l2=nan"), "error: regulariser 'l2' parameter 'factor' must be a number, not nan (got 'nan')"),
        (("--reg", "cutmix=inf"), "error: regulariser 'cutmix' parameter 'alpha' must be a finite number > 0 (got inf)"),
        (("--epochs", str(10**30)), "error: --epochs must be at most 2147483647"),
    ],
)
def test_bad_numbers_on_the_command_line_are_one_line(args, line):
    result = testing.run_cli("run", "lenet5", *args, "--dry-run")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.strip().startswith(line), result.stderr


def test_allow_inf_is_opt_in_and_nan_is_never_allowed():
    limit = Annotated[float, Range(0, None), AllowInf]
    assert coerce("inf", limit, where="p") == math.inf
    assert coerce("1e309", limit, where="p") == math.inf
    with pytest.raises(ParameterError, match="must be >= 0"):
        coerce("-inf", limit, where="p")
    for hint in (limit, float, Annotated[float, Range(0, 1)]):
        with pytest.raises(ParameterError, match="not nan"):
            coerce("nan", hint, where="p")
    with pytest.raises(ParameterError, match=r"^p must be a finite number \(got inf\)$"):
        coerce("inf", float, where="p")
    with pytest.raises(ParameterError, match=r"must be a finite number within float32's"):
        coerce(1e39, float, where="p")
    with pytest.raises(ParameterError, match=r"^p must be a finite number > 0 \(got inf\)$"):
        coerce("inf", Annotated[float, Range(0, None, min_inclusive=False)] | None, where="p")


def test_no_builtin_parameter_allows_inf():
    """The decision recorded in docs/spec-grammar.md: no built-in needs inf."""
    for component in cnnreg.components():
        for parameter in component.parameters():
            assert "AllowInf" not in repr(parameter.hint), component.qualified_name


# --- 5. property tests -----------------------------------------------------------------------

_BUILTINS = Host(entry_points=[]).registry
_NAMES = sorted({name for kind in KINDS for name in _BUILTINS.names(kind)} | {"value", "norm", "global_norm"})
_PARAMS = sorted({p.name for c in _BUILTINS.components() for p in c.parameters()})
_NUMBERS = ["0", "1", "-1", "0.5", "2", "3", "inf", "-inf", "+inf", "Infinity", "nan", "NaN", "1e309", "-1e309",
            "1e308", "1e39", "3.4e38", "1e20", "-1e20", "1e-320", "4294967295", "4294967296", "1e30", "1_000",
            "10000000000000000000000000000000", "1e3", "0x10", "true", "none", "32x32x3", "224,224,3"]
_TOKENS = _NAMES + _PARAMS + _NUMBERS + [":", "=", ",", "/", "-", "x", "cnnreg", "test-plugin", "[", "]", " ", "\n"]


def _spec_text():
    name = st.one_of(st.sampled_from(_NAMES), st.sampled_from(["cnnreg/he_normal", "x/y", "", "-", "a b"]))
    value = st.one_of(st.sampled_from(_NUMBERS), st.text(alphabet="0123456789.-+e:=,/xinfa \n", max_size=8))
    item = st.one_of(
        st.tuples(st.sampled_from(_PARAMS), value).map(lambda kv: f"{kv[0]}={kv[1]}"),
        value,
    )
    structured = st.one_of(
        name,
        st.tuples(name, value).map(lambda t: f"{t[0]}={t[1]}"),
        st.tuples(name, st.lists(item, min_size=1, max_size=4)).map(lambda t: f"{t[0]}:{','.join(t[1])}"),
    )
    soup = st.lists(st.sampled_from(_TOKENS), max_size=8).map("".join)
    raw = st.text(alphabet="abcdefhilmnorstuxyz_0123456789.-+:=,/[]() \n\t\x00é", max_size=30)
    return st.one_of(structured, soup, raw)


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (tuple, list)):
        return all(_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    return True


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(text=_spec_text())
def test_resolve_raises_only_one_line_errors_and_returns_only_finite_numbers(text):
    """Every kind's resolve (optimizers and schedules among them), the run's optimizer with its
    learning rate, and --clip (the same grammar)."""
    from cnnreg.training import optim

    resolvers = [lambda t, kind=kind: _BUILTINS.resolve(kind, t)[1] for kind in KINDS]
    resolvers += [lambda t: optim.resolve_optimizer(_BUILTINS, t).params, optim.parse_clip]
    for resolve in resolvers:
        try:
            params = resolve(text)
        except CnnregError as exc:
            assert "\n" not in str(exc) and "\r" not in str(exc), repr(str(exc))
        else:
            assert _finite(params), (text, params)


_INIT_PARAMS = {c.name: [p.name for p in c.parameters()] for c in _BUILTINS.components("initialiser")}


@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    name=st.sampled_from(sorted(_INIT_PARAMS)),
    values=st.lists(
        st.one_of(
            st.sampled_from(_NUMBERS),
            st.floats(allow_nan=True, allow_infinity=True).map(repr),
            st.floats(min_value=-1e21, max_value=1e21).map(repr),
            st.integers(min_value=-(2**70), max_value=2**70).map(str),
        ),
        min_size=1, max_size=4,
    ),
)
def test_built_initialisers_draw_finite_weights(name, values):
    """Fuzzed numbers for every initialiser parameter: a one-line error, or finite weights."""
    import numpy as np

    keras = pytest.importorskip("keras")
    params = _INIT_PARAMS[name]
    spec = name + (":" + ",".join(f"{p}={v}" for p, v in zip(params, values)) if params else "")
    try:
        initializer = cnnreg.build("initialiser", spec)
    except CnnregError as exc:
        assert "\n" not in str(exc)
        return
    weights = keras.ops.convert_to_numpy(initializer((3, 3, 2, 4), dtype="float32"))
    assert np.isfinite(weights).all(), spec


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    spec=st.tuples(
        st.sampled_from(["l1", "l2", "l1_l2:l1", "l1_l2:l2", "max_norm", "mixup", "cutmix", "label_smoothing"]),
        st.one_of(st.sampled_from(_NUMBERS), st.floats().map(repr)),
    ).map(lambda t: f"{t[0]}={t[1]}" if ":" not in t[0] else f"{t[0]}={t[1]}")
)
def test_built_regularisers_compute_finite_values(spec):
    """Penalties, constraints and batch mixing on finite inputs: finite, or a one-line error."""
    import numpy as np

    keras = pytest.importorskip("keras")
    try:
        reg = cnnreg.build("regulariser", spec)
    except CnnregError as exc:
        assert "\n" not in str(exc)
        return
    weights = np.random.default_rng(0).normal(size=(3, 3, 2, 4)).astype("float32")
    outputs = []
    if reg.kernel_regularizer() is not None:
        outputs.append(keras.ops.convert_to_numpy(reg.kernel_regularizer()(weights)))
    if reg.kernel_constraint(4) is not None:
        outputs.append(keras.ops.convert_to_numpy(reg.kernel_constraint(4)(keras.ops.convert_to_tensor(weights))))
    if reg.batch_transform() is not None:
        x = np.random.default_rng(1).uniform(0, 255, size=(4, 8, 8, 3)).astype("float32")
        outputs.extend(reg.batch_transform()(x, np.eye(4, dtype="float32"), np.random.default_rng(2)))
    outputs.extend(v for v in reg.loss_params().values())
    assert all(np.isfinite(np.asarray(o, dtype="float64")).all() for o in outputs), spec


# --- 6. HOME missing -------------------------------------------------------------------------


#: main() with a bad HOME, then matplotlib (which makes its config folder where the environment
#: says, under HOME otherwise); prints the folders chosen.  Keras reads KERAS_HOME the same way
#: (not imported here: importing it takes seconds).
_HOME_PROBE = """
import os, sys
from cnnreg.cli import main
try:
    main(["list", "datasets"])
except SystemExit as exc:
    assert not exc.code, exc.code
import matplotlib
matplotlib.get_configdir(), matplotlib.get_cachedir()
print(os.environ["MPLCONFIGDIR"], os.environ["KERAS_HOME"])
"""


def test_missing_home_uses_a_temporary_folder_with_one_warning(tmp_path, subprocess_env):
    missing = tmp_path / "no" / "such" / "home"
    env = {k: v for k, v in subprocess_env.items() if k not in ("KERAS_HOME", "MPLCONFIGDIR")}
    env["HOME"] = str(missing)
    proc = subprocess.run([sys.executable, "-c", _HOME_PROBE], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"warning: HOME ({missing}) is not a writable folder: KERAS_HOME and MPLCONFIGDIR "
                               "point to the temporary folder ")
    assert not (tmp_path / "no").exists()  # nothing made under the HOME that does not exist
    matplotlib_dir, keras_dir = proc.stdout.split()[-2:]
    assert matplotlib_dir == keras_dir and "cnnreg-home-" in keras_dir and keras_dir in lines[0]
    assert not os.path.exists(keras_dir)  # removed at exit


def test_unset_home_warns_once_and_the_command_works(subprocess_env):
    env = {k: v for k, v in subprocess_env.items() if k not in ("HOME", "KERAS_HOME", "MPLCONFIGDIR")}
    proc = subprocess.run([sys.executable, "-m", "cnnreg", "list", "datasets"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0 and "digits" in proc.stdout, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: HOME is not set: KERAS_HOME and MPLCONFIGDIR point to")


def test_a_usable_home_or_set_caches_warn_nothing(tmp_path, subprocess_env):
    env = dict(subprocess_env, HOME=str(tmp_path / "missing"), KERAS_HOME=str(tmp_path / "k"),
               MPLCONFIGDIR=str(tmp_path / "m"))
    proc = subprocess.run([sys.executable, "-m", "cnnreg", "list", "datasets"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0 and proc.stderr == ""
    env = dict(subprocess_env, HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "cnnreg", "list", "datasets"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0 and proc.stderr == ""
