"""The library under the command line: one public function per ``cnnreg`` command.

``cnnreg.run(...)``, ``cnnreg.summary(...)``, ``cnnreg.evaluate(...)`` ... take the command's
arguments and options as keyword arguments of the same names and defaults, check them the same
way (a :class:`cnnreg.errors.CnnregError` of one line for a mistake, before anything heavy is
imported), and return a :class:`cnnreg.api.results.Result` whose ``to_dict()`` is exactly what
the command prints with ``--json``.  The CLI (:mod:`cnnreg.cli`) only parses, calls one of
these and renders the result.  :data:`COMMANDS` maps each command to its function.

Each function is imported when first used (``import cnnreg`` imports no keras).
"""

from __future__ import annotations

__all__ = ["COMMANDS"]

#: ``cnnreg`` command → ``"module:function"`` of :mod:`cnnreg.api`; the function is exported
#: from :mod:`cnnreg` under its own name.
COMMANDS: dict[str, str] = {
    "list": "cnnreg.api.components:list_components",
    "show": "cnnreg.api.components:show",
    "plugins": "cnnreg.api.components:list_plugins",
    "run": "cnnreg.api.runs:run",
    "resume": "cnnreg.api.runs:resume",
    "rerun": "cnnreg.api.runs:rerun",
    "runs": "cnnreg.api.runs:list_runs",
    "log": "cnnreg.api.runs:log_run",
    "evaluate": "cnnreg.api.runs:evaluate",
    "predict": "cnnreg.api.runs:predict",
    "lr-find": "cnnreg.api.runs:lr_find",
    "diagnose": "cnnreg.api.runs:diagnose",
    "publish": "cnnreg.api.runs:publish",
    "export": "cnnreg.api.export:export",
    "attack": "cnnreg.api.attack:attack",
    "summary": "cnnreg.api.analysis:summary",
    "estimate": "cnnreg.api.analysis:estimate",
    "compare": "cnnreg.api.analysis:compare",
    "data info": "cnnreg.api.data:dataset_info",
    "data show": "cnnreg.api.data:dataset_samples",
    "weights pull": "cnnreg.api.zoo:pull_weights",
    "plugin new": "cnnreg.api.plugin:new_plugin",
    "sweep run": "cnnreg.api.sweeps:sweep",
    "sweep show": "cnnreg.api.sweeps:show_sweep",
}
