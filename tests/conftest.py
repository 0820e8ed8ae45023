"""Test session setup: our tests never depend on what plugins happen to be installed."""

from __future__ import annotations

import os

import pytest

# Quiet TensorFlow's C++ start-up chatter; keep Keras on its default backend unless asked.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(autouse=True, scope="session")
def _no_installed_plugins(tmp_path_factory):
    """Only the built-ins (plus what a test adds with cnnreg.testing) are loaded; no zoo of the
    machine's (CNNREG_ZOO) is listed, and downloads go to a cache of the session's own."""
    from cnnreg import testing

    os.environ.pop("CNNREG_LOAD_PLUGINS", None)
    os.environ.pop("CNNREG_DISABLE_PLUGINS", None)
    os.environ.pop("CNNREG_ZOO", None)
    os.environ["CNNREG_CACHE"] = str(tmp_path_factory.mktemp("cnnreg-cache"))
    with testing.isolated():
        yield


@pytest.fixture
def subprocess_env():
    """Environment for `cnnreg` subprocesses: built-ins only, no installed plugins."""
    env = dict(os.environ)
    env["CNNREG_LOAD_PLUGINS"] = ""
    env["COLUMNS"] = "200"
    return env
