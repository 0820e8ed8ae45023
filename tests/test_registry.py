"""Registry: lazy factories, providers, case-insensitive names, ambiguity, parameter checks."""

from __future__ import annotations

import sys
import types
from typing import Annotated, Literal

import pytest

import cnnreg
from cnnreg import testing
from cnnreg.errors import AmbiguousComponentError, ParameterError, PluginError, UnknownComponentError
from cnnreg.spec import Range


def make_plugin(name: str, **components):
    """A plugin object registering ``components`` (name → factory) as regularisers."""
    module = types.ModuleType(name)

    @cnnreg.hookimpl
    def register_regularisers(registry):
        for component_name, factory in components.items():
            registry.add(component_name, factory, summary=f"{component_name} from {name}")

    module.register_regularisers = register_regularisers
    return module


def dropout(rate: Annotated[float, Range(0, 1, max_inclusive=False)] = 0.5, noise: Literal["a", "b"] = "a"):
    """Drop units at random."""
    return ("dropout", rate, noise)


def needs_factor(factor: float, extra: int = 1):
    return ("needs", factor, extra)


def test_builtin_initialisers_are_registered_with_provider():
    he = cnnreg.get("initialiser", "he_normal")
    assert he.provider == "cnnreg"
    assert he.provider_version == cnnreg.__version__
    assert "relu" in he.metadata["suits"]
    names = {c.name for c in cnnreg.components("initialisers")}
    assert {
        "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal",
        "variance_scaling", "orthogonal", "random_normal", "truncated_normal", "random_uniform",
    } <= names


def test_names_are_case_insensitive_and_aliases_work():
    assert cnnreg.get("initializer", "HE_Normal").name == "he_normal"
    assert cnnreg.get("initialiser", "kaiming_normal").name == "he_normal"
    assert cnnreg.get("init", "cnnreg/he_normal").name == "he_normal"


def test_unknown_name_suggests_the_closest():
    with pytest.raises(UnknownComponentError) as info:
        cnnreg.get("initialiser", "he_norml")
    message = str(info.value)
    assert "unknown initialiser 'he_norml'; did you mean 'he_normal'?" in message
    assert "glorot_uniform" in message  # names the valid choices


def test_build_converts_spec_values_by_type_hints():
    with testing.plugin(make_plugin("p", dropper=dropout)):
        assert cnnreg.build("regulariser", "dropper=0.25") == ("dropout", 0.25, "a")
        assert cnnreg.build("regulariser", "dropper:rate=0.1,noise=B") == ("dropout", 0.1, "b")
        assert cnnreg.build("regulariser", "DROPPER") == ("dropout", 0.5, "a")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("dropper=abc", "regulariser 'dropper' parameter 'rate' must be a number (got 'abc')"),
        ("dropper=1.5", "must be in [0, 1) (got 1.5)"),
        ("dropper:rat=0.1", "unknown parameter 'rat' for regulariser 'dropper'; did you mean 'rate'?"),
        ("dropper:noise=c", "'c' is not allowed"),
        ("needs", "regulariser 'needs' needs parameter 'factor' (a number)"),
    ],
)
def test_parameter_errors(spec, message):
    with testing.plugin(make_plugin("p", dropper=dropout, needs=needs_factor)):
        with pytest.raises(ParameterError) as info:
            cnnreg.build("regulariser", spec)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_same_name_from_two_providers_is_ambiguous_but_qualified_names_work():
    with testing.plugin(make_plugin("one", dropper=dropout), distribution="pkg-one"):
        with testing.plugin(make_plugin("two", dropper=needs_factor), distribution="pkg-two"):
            with pytest.raises(AmbiguousComponentError) as info:
                cnnreg.get("regulariser", "dropper")
            assert "pkg-one/dropper" in str(info.value) and "pkg-two/dropper" in str(info.value)
            assert cnnreg.get("regulariser", "pkg-one/dropper").provider == "pkg-one"
            assert cnnreg.build("regulariser", "pkg-two/dropper:factor=2") == ("needs", 2.0, 1)
            with pytest.raises(UnknownComponentError, match="not provided by 'pkg-three'"):
                cnnreg.get("regulariser", "pkg-three/dropper")


def test_lazy_factory_is_imported_only_when_used(tmp_path, monkeypatch):
    package = tmp_path / "lazy_pkg_for_test"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "factories.py").write_text("def thing(size: int = 1):\n    return ('thing', size)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = make_plugin("lazy", thing="lazy_pkg_for_test.factories:thing", missing="no_such_module_xyz:f")
    with testing.plugin(module):
        component = cnnreg.get("regulariser", "thing")
        assert component.lazy and "lazy_pkg_for_test.factories" not in sys.modules
        assert [c.name for c in cnnreg.components("regulariser")].count("thing") == 1
        assert "lazy_pkg_for_test.factories" not in sys.modules  # listing does not import
        assert cnnreg.build("regulariser", "thing=3") == ("thing", 3)
        assert "lazy_pkg_for_test.factories" in sys.modules
        with pytest.raises(PluginError, match="cannot be loaded: No module named 'no_such_module_xyz'"):
            cnnreg.build("regulariser", "missing")


def test_component_to_dict_is_json_ready():
    import json

    data = cnnreg.get("initialiser", "variance_scaling").to_dict(detail=True)
    json.dumps(data)
    assert data["primary"] == "scale"
    assert [p["name"] for p in data["parameters"]] == ["scale", "mode", "distribution", "seed"]
    assert data["parameters"][1]["description"] == "one of fan_in, fan_out, fan_avg"


def test_invalid_registrations_fail_the_plugin_not_the_registry():
    module = make_plugin("bad", **{"bad name": dropout})
    with pytest.warns(UserWarning, match="register_regularisers raised ValueError"):
        with testing.plugin(module) as registry:
            assert registry.host.plugins["bad"].status == "hook-error"
            assert cnnreg.get("initialiser", "he_normal")


def test_an_unresolvable_return_annotation_does_not_lose_the_parameter_hints():
    namespace: dict = {}
    exec(
        "from __future__ import annotations\n"
        "def factory(rate: float = 0.5, flag: bool = False) -> keras.Model:\n"
        "    return (rate, flag)\n",
        namespace,
    )
    with testing.plugin(make_plugin("hints", hinted=namespace["factory"])):
        assert cnnreg.build("regulariser", "hinted:rate=0.25,flag=true") == (0.25, True)
