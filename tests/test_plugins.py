"""Plugin loading: isolation of failures, allow/deny lists, unknown hooks, provenance."""

from __future__ import annotations

import types

import pytest

import cnnreg
from cnnreg import testing
from cnnreg.errors import UnknownComponentError


def write_module(tmp_path, monkeypatch, name: str, source: str) -> str:
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


GOOD = """
import cnnreg

@cnnreg.hookimpl
def register_architectures(registry):
    registry.add("tiny_net", "cnnreg.builtin.initialisers:he_normal", summary="a tiny net")
"""


def test_simulated_entry_point_is_imported_and_credited(tmp_path, monkeypatch):
    module = write_module(tmp_path, monkeypatch, "plug_good_xyz", GOOD)
    with testing.entry_point("good", module, distribution="cnnreg-good", version="1.2.3") as registry:
        component = registry.get("architecture", "tiny_net")
        assert (component.provider, component.provider_version, component.plugin) == ("cnnreg-good", "1.2.3", "good")
        info = registry.host.plugins["good"]
        assert info.status == "ok" and info.hooks == ["register_architectures"] and info.components == 1


def test_plugin_that_raises_on_import_is_isolated(tmp_path, monkeypatch):
    module = write_module(tmp_path, monkeypatch, "plug_broken_xyz", "raise RuntimeError('boom at import')\n")
    with pytest.warns(UserWarning, match=r"plugin 'broken' \(cnnreg-broken 0.1\) cannot be loaded: RuntimeError: boom"):
        with testing.entry_point("broken", module, distribution="cnnreg-broken", version="0.1") as registry:
            assert registry.host.plugins["broken"].status == "failed"
            assert cnnreg.get("initialiser", "he_normal")  # everything else keeps working
            with pytest.raises(UnknownComponentError, match=r"plugins that failed to load: broken"):
                cnnreg.get("architecture", "from_the_broken_one")


def test_hook_that_raises_adds_nothing_and_is_recorded():
    module = types.ModuleType("half")

    @cnnreg.hookimpl
    def register_datasets(registry):
        registry.add("half_added", lambda: None)
        raise KeyError("oops")

    @cnnreg.hookimpl
    def register_regularisers(registry):
        registry.add("still_fine", lambda: None)

    module.register_datasets = register_datasets
    module.register_regularisers = register_regularisers
    with pytest.warns(UserWarning, match="register_datasets raised KeyError"):
        with testing.plugin(module, name="half") as registry:
            info = registry.host.plugins["half"]
            assert info.status == "hook-error"
            assert "half_added" not in [c.name for c in registry.components("dataset")]
            assert registry.get("regulariser", "still_fine").plugin == "half"


def test_misspelled_hook_is_reported_with_suggestion():
    module = types.ModuleType("typo")

    @cnnreg.hookimpl
    def register_architecture(registry):  # missing the final 's'
        raise AssertionError("never called")

    module.register_architecture = register_architecture
    with pytest.warns(UserWarning, match="unknown hook 'register_architecture'; did you mean 'register_architectures'"):
        with testing.plugin(module, name="typo") as registry:
            assert registry.host.plugins["typo"].status == "warning"


def test_hook_with_wrong_arguments_fails_validation():
    module = types.ModuleType("wrongargs")

    @cnnreg.hookimpl
    def register_datasets(registry, unexpected):
        pass

    module.register_datasets = register_datasets
    with pytest.warns(UserWarning, match="cannot be loaded"):
        with testing.plugin(module, name="wrongargs") as registry:
            assert registry.host.plugins["wrongargs"].status == "failed"


def test_disable_and_allow_lists(tmp_path, monkeypatch):
    module = write_module(tmp_path, monkeypatch, "plug_env_xyz", GOOD)
    with testing.entry_point("envplug", module, distribution="cnnreg-envplug") as registry:
        monkeypatch.setenv("CNNREG_DISABLE_PLUGINS", "other, cnnreg_envplug")
        info = registry.host.plugins["envplug"]
        assert info.status == "blocked" and "CNNREG_DISABLE_PLUGINS" in info.error
        assert [c.name for c in registry.components("architecture")].count("tiny_net") == 0
    monkeypatch.delenv("CNNREG_DISABLE_PLUGINS")
    monkeypatch.setenv("CNNREG_LOAD_PLUGINS", "")
    with testing.entry_point("envplug", module, distribution="cnnreg-envplug") as registry:
        assert registry.host.plugins["envplug"].status == "blocked"
        assert registry.get("initialiser", "he_normal").provider == "cnnreg"  # built-ins always load
    monkeypatch.setenv("CNNREG_LOAD_PLUGINS", "envplug")
    with testing.entry_point("envplug", module, distribution="cnnreg-envplug") as registry:
        assert registry.host.plugins["envplug"].status == "ok"


def test_isolated_hides_installed_entry_points():
    with testing.isolated() as registry:
        assert {p.distribution for p in registry.host.plugin_list()} == {"cnnreg"}
