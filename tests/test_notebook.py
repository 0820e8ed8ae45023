"""examples/quickstart.ipynb runs top to bottom in a Jupyter kernel of this Python: no cell
errors, the results show as tables, the run completes with one live progress bar, its curves
show inline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"


def _cell(nb, cell_id: str):
    return next(c for c in nb.cells if c.get("id") == cell_id)


def _html(cell) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for o in cell.outputs)


def test_the_notebook_keeps_no_outputs():
    """The repository keeps no run outputs: no cell has outputs or an execution count."""
    nb = json.loads(NOTEBOOK.read_text())
    assert nb["nbformat"] == 4
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, cell["id"]


def test_the_quickstart_notebook_runs(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason="pip install -e '.[test]'")
    nbclient = pytest.importorskip("nbclient", reason="pip install -e '.[test]'")
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    # The kernel inherits this environment: built-ins only, as in the other tests' subprocesses;
    # connection files in the test's own folder.
    monkeypatch.setenv("CNNREG_LOAD_PLUGINS", "")
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    # "python3" is this interpreter, whatever kernels the machine or the user has registered.
    kernels = tmp_path / "kernels"
    write_kernel_spec(kernels / "python3")
    km = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
    assert km.kernel_spec.argv[0] == sys.executable

    class Recording(nbclient.NotebookClient):
        """Records each cell's display messages: (type, display id)."""

        def process_message(self, msg, cell, cell_index):
            content = msg.get("content", {})
            if msg["msg_type"] in ("display_data", "update_display_data", "execute_result"):
                displays.setdefault(cell.get("id"), []).append(
                    (msg["msg_type"], (content.get("transient") or {}).get("display_id")))
            return super().process_message(msg, cell, cell_index)

    displays: dict[str, list[tuple[str, str | None]]] = {}
    work = tmp_path / "work"
    work.mkdir()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = Recording(nb, km=km, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(work)}})
    client.execute()  # a cell that raises raises CellExecutionError here, with its traceback

    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not [o for o in cell.outputs if o.output_type == "error"], cell.id

    # the run completed, in the notebook's working directory
    manifest = json.loads((work / "runs" / "quickstart" / "run.json").read_text())
    assert manifest["status"] == "completed" and manifest["epochs_done"] == 3

    # results show as tables
    assert "<table>" in _html(_cell(nb, "list")) and "lenet5" in _html(_cell(nb, "list"))
    assert "<table>" in _html(_cell(nb, "summary")) and "MACs" in _html(_cell(nb, "summary"))
    assert "<table>" in _html(_cell(nb, "evaluate")) and "precision" in _html(_cell(nb, "evaluate"))
    assert "<table>" in _html(_cell(nb, "attack"))
    assert "MACs" in "".join(o.get("text", "") for o in _cell(nb, "cost").outputs)

    # one live bar: shown once with a display id, then updated in place (not an output per
    # batch or epoch); the cell ends with that bar and the result's table
    run = _cell(nb, "run")
    live = [d for kind, d in displays["run"] if kind == "display_data" and d]
    assert len(live) == 1, displays["run"]
    updates = [d for kind, d in displays["run"] if kind == "update_display_data"]
    assert len(updates) >= 3 and set(updates) == set(live), displays["run"]
    bars = [o for o in run.outputs if "<progress" in o.get("data", {}).get("text/html", "")]
    assert len(bars) == 1 and "epoch 3/3" in bars[0].data["text/html"]
    # TensorFlow's native log lines may come as stderr, depending on the machine
    shown = [o for o in run.outputs if not (o.output_type == "stream" and o.name == "stderr")]
    assert len(shown) <= 2, [o.output_type for o in run.outputs]  # the live bar and the result
    assert "run completed" in _html(run)

    # the curves, and the robustness curve the attack wrote into the run directory
    assert any("image/png" in o.get("data", {}) for o in _cell(nb, "curves").outputs)
    assert (work / "runs" / "quickstart" / "robustness.png").exists()
    assert any("image/png" in o.get("data", {}) for o in _cell(nb, "robustness").outputs)
