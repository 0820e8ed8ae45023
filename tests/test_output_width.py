"""Output at the width people have: `cnnreg list`, `plugins` and `show` at 60-200 columns, the
summaries `list` shows, suggestions for unknown names, and the primary parameter (issue 13)."""

from __future__ import annotations

import json
import re
import types

import pytest
from rich.cells import cell_len

import cnnreg
from cnnreg import testing
from cnnreg.cli.render import cut, cut_middle, reflow
from cnnreg.errors import ParameterError, UnknownComponentError, choices_text, suggestions
from cnnreg.registry import KINDS, first_sentence
from cnnreg.testing import run_cli

WIDTHS = (60, 80, 100, 120, 200)


def cli(width: int, *args: str, monkeypatch) -> testing.CliResult:
    monkeypatch.setenv("COLUMNS", str(width))
    return run_cli(*args)


def components_json(*args: str) -> list[dict]:
    return json.loads(run_cli("list", *args, "--json").stdout)["components"]


def table_rows(stdout: str) -> list[str]:
    """The body rows of every table (the lines with a column separator, less the header)."""
    return [line for line in stdout.splitlines() if "│" in line]


def plugin_module(name: str, **components):
    """A plugin module registering regularisers ``name -> (factory, summary, aliases)``."""
    module = types.ModuleType(name)

    @cnnreg.hookimpl
    def register_regularisers(registry):
        for component, (factory, summary, aliases) in components.items():
            registry.add(component, factory, summary=summary, aliases=aliases)

    module.register_regularisers = register_regularisers
    return module


def smooth(factor: float = 0.1):
    """A smooth penalty."""
    return ("smooth", factor)


# --- cnnreg list ------------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_list_takes_one_line_per_component_and_fits_the_width(width, monkeypatch):
    result = cli(width, "list", monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.stderr
    data = components_json()
    lines = result.stdout.splitlines()
    rows = table_rows(result.stdout)
    assert len(rows) == len(data)  # one line each
    assert all(cell_len(line.rstrip()) <= width for line in lines), max(lines, key=cell_len)
    first_words = [row.split()[0] for row in rows]
    assert first_words == [c["name"] for c in data]  # names whole, in order
    for row, component in zip(rows, data):
        if component["kind"] == "weights":  # its own columns: tests/test_weights_kind.py
            continue
        shown = row.split("│")[-1].strip()  # built-ins only: the title names the provider, the summary is last
        summary = component["summary"]
        if shown != summary:
            assert shown.endswith("…") and summary.startswith(shown[:-1].rstrip()), (shown, summary)
    # a table per kind: title, header, rule and a blank line each, plus the note when columns were hidden
    assert len(lines) == len(data) + 4 * len(KINDS) + (1 if "hidden to fit" in result.stdout else 0)


def test_list_at_80_columns_keeps_aliases_and_says_the_provider_once(monkeypatch):
    out = cli(80, "list", "architectures", monkeypatch=monkeypatch).stdout
    count = len(components_json("architectures"))
    assert out.splitlines()[0].strip() == f"architectures ({count}), all from cnnreg {cnnreg.__version__}"
    googlenet = next(row for row in table_rows(out) if row.startswith("googlenet "))
    assert "inception_v1" in googlenet and "GoogLeNet / Inception v1 (Szegedy et" in googlenet
    assert "hidden to fit" not in out


def test_list_at_60_columns_drops_aliases_and_says_so(monkeypatch):
    out = cli(60, "list", "initialisers", monkeypatch=monkeypatch).stdout
    assert "kaiming_normal" not in out
    assert out.rstrip().splitlines()[-1] == "hidden to fit: aliases (see cnnreg show NAME)"
    assert len(table_rows(out)) == len(components_json("initialisers"))


def test_list_with_two_providers_shows_the_column_and_drops_versions_first(monkeypatch):
    module = plugin_module("smoothplug", smoothing_penalty=(smooth, "A smooth L1/L2 penalty on every kernel", ("sp",)))
    with testing.plugin(module, distribution="cnnreg-smoothing", version="1.4.2"):
        wide = cli(200, "list", "regularisers", monkeypatch=monkeypatch).stdout
        narrow = cli(80, "list", "regularisers", monkeypatch=monkeypatch).stdout
        sixty = cli(60, "list", "regularisers", monkeypatch=monkeypatch).stdout
    row = next(r for r in table_rows(wide) if r.startswith("smoothing_penalty "))
    assert "cnnreg-smoothing 1.4.2" in row and "sp" in row and "all from" not in wide
    for out, width in ((narrow, 80), (sixty, 60)):
        row = next(r for r in table_rows(out) if r.startswith("smoothing_penalty "))
        assert row.rstrip().endswith("cnnreg-smoothing") and "1.4.2" not in out
        assert all(cell_len(line.rstrip()) <= width for line in out.splitlines())
        assert "hidden to fit:" in out and "versions" in out.splitlines()[-1]


def test_list_summary_is_whole_in_json_and_show(monkeypatch):
    dropout = next(c for c in components_json("regularisers") if c["name"] == "dropout")
    out = cli(80, "list", "regularisers", monkeypatch=monkeypatch).stdout
    row = next(r for r in table_rows(out) if r.startswith("dropout "))
    assert "…" in row and dropout["summary"] not in row
    assert dropout["summary"] == "Dropout at rate: the architecture's own, else one layer before the classifier."


def test_provider_that_failed_to_load_says_so(tmp_path, monkeypatch):
    (tmp_path / "plug_width_broken.py").write_text("import no_such_dependency_for_width_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with testing.entry_point("widthbroken", "plug_width_broken", distribution="cnnreg-broken", version="0.2"):
        result = run_cli("list", "--provider", "cnnreg-broken")
        unknown = run_cli("list", "--provider", "cnnreg-brokn")
    assert result.exit_code == 2 and result.stdout == ""
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error == [
        "error: package 'cnnreg-broken' is installed but failed to load: plugin 'widthbroken' cannot be loaded: "
        "ModuleNotFoundError: No module named 'no_such_dependency_for_width_xyz' (see `cnnreg plugins`)"
    ]
    assert unknown.stderr.splitlines()[-1].startswith(
        "error: no installed package 'cnnreg-brokn' provides components; did you mean 'cnnreg-broken'?"
    )


# --- cnnreg plugins ---------------------------------------------------------------------------


@pytest.mark.parametrize("width", (60, 80, 100))
def test_plugins_wraps_an_error_under_the_table_instead_of_cutting_it(width, tmp_path, monkeypatch):
    (tmp_path / "plug_width_failing.py").write_text("import torchvision_is_not_installed_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with testing.entry_point("failing", "plug_width_failing", distribution="cnnreg-failing", version="0.2.0"):
        result = cli(width, "plugins", monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(cell_len(line.rstrip()) <= width for line in lines)
    assert "…" not in result.stdout
    row = next(line for line in lines if line.startswith("failing "))
    assert row.rstrip().endswith("failed") and "cnnreg-failing 0.2.0" in row
    note = result.stdout[result.stdout.index("failing (failed): "):]
    assert " ".join(note.split()) == (
        "failing (failed): cannot be loaded: ModuleNotFoundError: No module named 'torchvision_is_not_installed_here'"
    )
    assert ("hooks" in lines[0]) == (width >= 80)  # the hooks column goes at 60
    assert ("(built-in)" in result.stdout) == (width >= 80)


def test_plugins_keeps_the_error_inline_where_it_fits(tmp_path, monkeypatch):
    (tmp_path / "plug_width_failing2.py").write_text("import torchvision_is_not_installed_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with testing.entry_point("failing", "plug_width_failing2", distribution="cnnreg-failing", version="0.2.0"):
        out = cli(200, "plugins", monkeypatch=monkeypatch).stdout
    row = next(line for line in out.splitlines() if line.startswith("failing "))
    assert "failed: cannot be loaded: ModuleNotFoundError: No module named 'torchvision_is_not_installed_here'" in row


# --- summaries: the first sentence ------------------------------------------------------------


@pytest.mark.parametrize(
    "text, sentence",
    [
        ("Orthogonal matrix (Saxe et al. 2013) times gain; keeps norms. More.",
         "Orthogonal matrix (Saxe et al. 2013) times gain; keeps norms."),
        ("As in Saxe et al. 2013 it keeps norms. More.", "As in Saxe et al. 2013 it keeps norms."),
        ("Uses e.g. Keras layers, i.e. Dense. Next.", "Uses e.g. Keras layers, i.e. Dense."),
        ("See Fig. 3 and Eq. 2 for details. Next.", "See Fig. 3 and Eq. 2 for details."),
        ("ResNet vs. VGG compared. Next.", "ResNet vs. VGG compared."),
        ("After Y. LeCun and J. S. Denker. Next.", "After Y. LeCun and J. S. Denker."),
        ("A crop (AlexNet: 224 of 256. Or less.) resized back. Next.",
         "A crop (AlexNet: 224 of 256. Or less.) resized back."),
        ("Version 2. Next", "Version 2."),
        ("Rate 0.5 by default. Next", "Rate 0.5 by default."),
        ("One sentence without a dot", "One sentence without a dot"),
        ("An unclosed (paren. Two. Three", "An unclosed (paren."),
    ],
)
def test_first_sentence(text, sentence):
    assert first_sentence(text) == sentence


@pytest.mark.parametrize(
    "kind, name, start",
    [
        ("initialiser", "orthogonal", "Orthogonal matrix (Saxe et al. 2013) times gain; keeps norms"),
        ("regulariser", "cutmix", "CutMix (Yun et al. 2019): paste a box"),
        ("regulariser", "mixup", "MixUp (Zhang et al. 2018): blend pairs"),
        ("regulariser", "randaugment", "RandAugment (Cubuk et al. 2019): num_ops random operations"),
    ],
)
def test_builtin_summaries_do_not_end_inside_et_al(kind, name, start):
    assert cnnreg.get(kind, name).summary.startswith(start)


def test_no_builtin_summary_ends_inside_parentheses():
    for component in cnnreg.components():
        summary = component.summary
        assert summary.count("(") == summary.count(")"), (component.name, summary)
        assert not summary.endswith((" al.", " e.g.", " i.e.")), (component.name, summary)


def test_cut_keeps_whole_words_and_marks_the_cut():
    text = "AlexNet (Krizhevsky et al. 2012), exactly the lecture's table"
    assert cut(text, 200) == text
    assert cut(text, 44) == "AlexNet (Krizhevsky et al. 2012), exactly…"
    assert cut(text, 30) == "AlexNet (Krizhevsky et al.…"
    assert all(cell_len(cut(text, w)) <= w for w in range(1, 70))
    assert cell_len(cut("variance ≈ 0.774 stddev² and more text", 12)) <= 12


# --- cnnreg show: reflowed paragraphs ---------------------------------------------------------


def test_reflow_fills_paragraphs_and_keeps_blocks():
    doc = (
        "First paragraph written\nwith a hard break\nhere.\n\n"
        "- an item that goes on\n  to a second line\n- another\n\n"
        "Example::\n\n    x = keras.layers.Dense(3)\n    y = x\n\n"
        "Args:\n    rate: the rate\n\n"
        "| a | b |\n|---|---|\n\n"
        "Heading\n-------\n"
    )
    assert reflow(doc, 80) == [
        "First paragraph written with a hard break here.", "",
        "- an item that goes on to a second line", "- another", "",
        "Example::", "", "    x = keras.layers.Dense(3)", "    y = x", "",
        "Args:", "    rate: the rate", "",
        "| a | b |", "|---|---|", "",
        "Heading", "-------",
    ]
    long = reflow("word " * 60, 40)
    assert len(long) > 1 and all(len(line) <= 40 for line in long)
    assert reflow("1. " + "word " * 20, 30)[1].startswith("   word")  # hanging indent


@pytest.mark.parametrize("width", (60, 80, 120))
def test_show_reflows_the_docstring_to_the_width(width, monkeypatch):
    out = cli(width, "show", "resnet34", monkeypatch=monkeypatch).stdout
    doc = out[out.index("ResNet-34, exactly"):].splitlines()
    assert all(cell_len(line) <= min(width, 100) for line in doc)
    paragraphs = "\n".join(doc).split("\n\n")
    for paragraph in paragraphs:
        lines = paragraph.splitlines()
        for line, after in zip(lines, lines[1:]):  # filled: the next word would not have fitted
            words = after.split()
            head = " ".join(words[:2]) if len(words) > 1 and len(words[1]) == 1 else words[0]  # "3 ×" stays together
            assert cell_len(line) + 1 + cell_len(head) > min(width, 100), (line, after)
    assert "Deep Residual Learning for Image Recognition" in " ".join(" ".join(doc).split())


# --- suggestions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, word, expected",
    [
        ("initialiser", "he", "did you mean 'he_normal' or 'he_uniform'?"),
        ("initialiser", "kaiming",
         "did you mean 'he_normal' (alias kaiming_normal) or 'he_uniform' (alias kaiming_uniform)?"),
        ("initialiser", "xavier_norml", "did you mean 'glorot_normal' (alias xavier_normal)?"),
        ("initialiser", "he_norml", "did you mean 'he_normal'?"),
        ("architecture", "resnet35", "did you mean 'resnet34'?"),
        ("architecture", "vgg1", "did you mean 'vgg11', 'vgg13', 'vgg16' or 'vgg19'?"),
        ("architecture", "resnet", "did you mean 'resnet18', 'resnet34', 'resnet50', 'resnet101' or 'resnet152'?"),
        ("architecture", "keras-resnet1", "did you mean 'keras-resnet101', 'keras-resnet101v2', 'keras-resnet152' or"),
        ("architecture", "keras", "did you mean one of the 40 starting with 'keras' ('keras-convnextbase',"),
        ("regulariser", "weight_dec", "did you mean 'l2' (alias weight_decay)?"),
        ("regulariser", "label", "did you mean 'label_smoothing'?"),
        ("dataset", "fashion", "did you mean 'fashion_mnist'?"),
        ("dataset", "cifar", "did you mean 'cifar10' or 'cifar100'?"),
    ],
)
def test_unknown_names_suggest_by_prefix_alias_and_spelling(kind, word, expected):
    with pytest.raises(UnknownComponentError) as info:
        cnnreg.get(kind, word)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_init_he_on_the_command_line_suggests_both():
    result = run_cli("run", "mlp_bn", "--init", "he")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: unknown initialiser 'he'; did you mean 'he_normal' or 'he_uniform'? (valid: "
    )


def test_show_suggests_across_kinds_with_aliases():
    result = run_cli("show", "kaiming")
    assert result.stderr.startswith(
        "error: unknown component 'kaiming'; did you mean 'he_normal' (alias kaiming_normal) or "
        "'he_uniform' (alias kaiming_uniform)?"
    )


def test_suggestions_api():
    assert suggestions("h", ["he_normal", "he_uniform"]) == []  # one letter is no prefix
    assert suggestions("tensorflo", ["jax", "tensorflow", "torch"]) == ["tensorflow"]
    assert suggestions("zzz", ["jax"]) == []
    assert choices_text("he", ["he_normal", "he_uniform"]) == (
        "; did you mean 'he_normal' or 'he_uniform'? (valid: he_normal, he_uniform)"
    )


def test_closest_passes_over_what_cannot_win_and_finds_what_difflib_finds():
    """errors.closest skips candidates whose shared characters cannot reach the best ratio (a zoo
    has 100,000 names): on random typos of real names it picks what the plain difflib scan picks."""
    import difflib
    import os
    import random

    from cnnreg.errors import closest

    def scan(word, choices):
        best, best_key = None, None
        for candidate in choices:
            ratio = difflib.SequenceMatcher(None, word, candidate).ratio()
            key = (round(ratio, 6), len(os.path.commonprefix([word, candidate])), -abs(len(candidate) - len(word)), candidate)
            if ratio >= 0.6 and (best_key is None or key > best_key):
                best, best_key = candidate, key
        return best

    names = sorted({c.name for c in cnnreg.plugins.get_host().registry.components()
                    if c.kind != "weights"} | {f"lenet5.t{i}" for i in range(300)})
    rng = random.Random(0)
    for _ in range(400):
        word = list(rng.choice(names))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(word))
            edit = rng.choice(("drop", "add", "change"))
            if edit == "drop" and len(word) > 1:
                del word[at]
            else:
                word[at:at + (edit == "change")] = rng.choice("abcdxyz0123456789_.")
        word = "".join(word)
        assert closest(word, names) == scan(word, names), word


# --- the primary parameter --------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, name, primary",
    [
        ("architecture", "resnet34", None),
        ("architecture", "mlp_bn", None),
        ("architecture", "alexnet", None),
        ("architecture", "single_conv", "filters"),  # declared
        ("architecture", "keras-resnet50", "weights"),  # declared by the bridge
        ("initialiser", "he_normal", "seed"),
        ("initialiser", "variance_scaling", "scale"),
        ("regulariser", "dropout", "rate"),
        ("regulariser", "l2", "factor"),
        ("dataset", "folder", "path"),
    ],
)
def test_primary_parameter(kind, name, primary):
    assert cnnreg.get(kind, name).primary == primary


def test_no_architecture_gets_a_framework_parameter_as_primary_by_default():
    from cnnreg.registry import FRAMEWORK

    for component in cnnreg.components("architecture"):
        if "primary" not in component.metadata:
            assert component.primary not in FRAMEWORK["architecture"], component.name


def test_a_scaffold_style_architecture_has_no_primary():
    def tiny(input_shape=(32, 32, 3), num_classes=10, *, include_top: bool = True, width: int = 32):
        """A tiny net."""

    module = types.ModuleType("tinyarch")

    @cnnreg.hookimpl
    def register_architectures(registry):
        registry.add("tinyarch", tiny)

    module.register_architectures = register_architectures
    with testing.plugin(module):
        component = cnnreg.get("architecture", "tinyarch")
        assert component.primary is None
        with pytest.raises(ParameterError) as info:
            component.resolve({"__primary__": "64"})
    assert str(info.value) == (
        "architecture 'tinyarch' has no primary parameter; write tinyarch:KEY=VALUE (parameters: include_top, width)"
    )


def test_name_equals_value_without_a_primary_is_one_line_listing_the_parameters():
    with pytest.raises(ParameterError) as info:
        cnnreg.get_registry().resolve("architecture", "resnet34=false")
    assert str(info.value) == (
        "architecture 'resnet34' has no primary parameter; write resnet34:KEY=VALUE "
        "(parameters: include_top, batchnorm, dropout)"
    )
    _, params = cnnreg.get_registry().resolve("architecture", "resnet34:include_top=false")
    assert params == {"include_top": False}


def test_show_says_when_there_is_no_primary(monkeypatch):
    out = cli(100, "show", "resnet34", monkeypatch=monkeypatch).stdout
    assert "NAME=VALUE sets it" not in out and "no primary parameter: write resnet34:KEY=VALUE" in out
    assert "gain  (NAME=VALUE sets it)" in cli(100, "show", "orthogonal", monkeypatch=monkeypatch).stdout


def test_listing_lays_out_as_richs_table_does():
    """render.Listing (cnnreg list's tables, laid out once) prints what rich.table.Table prints
    for the same columns, less the trailing blanks: only faster."""
    import io

    from rich.console import Console
    from rich.table import Table

    from cnnreg.cli.render import Listing

    columns = [("name", {"style": "bold cyan"}), ("classes", {"justify": "right"}), ("summary", {"width": 24})]
    rows = [("alexnet", "1000", cut("AlexNet (Krizhevsky et al. 2012), the lecture's", 24)),
            ("lenet5", "10", "LeNet-5 \\[1998]"), ("x", "", "")]
    title = "architectures (3), all from cnnreg 0.1.0"
    for colour in (None, "truecolor"):  # a pipe (one segment per run of rows) and a terminal
        printed = []
        for table in (Table(title=title, title_justify="left", show_edge=False, pad_edge=False), Listing(title=title)):
            for header, options in columns:
                table.add_column(header, **options)
            for row in rows:
                table.add_row(*row)
            out = Console(file=io.StringIO(), width=80, emoji=False, color_system=colour, force_terminal=bool(colour))
            out.print(table)
            text = re.sub(r"\x1b\[[0-9;]*m", "", out.file.getvalue())
            printed.append([line.rstrip() for line in text.splitlines()])
        assert printed[1] == printed[0]
        assert printed[1][4] == "lenet5  │      10 │ LeNet-5 [1998]"
# --- tables that fit: diagnose, estimate, --method compiled, runs (issue 25 item 2) --------------


def cell_texts(out: str, column: int) -> list[str]:
    """Each table row's text in ``column`` (0-based), its wrapped lines joined with spaces; folded
    words (a line that ends inside one) are joined as they were."""
    rows, current = [], []
    for line in out.splitlines() + ["─┼─"]:
        if "┼" in line or "╇" in line:
            if current:
                rows.append(" ".join(current))
            current = []
        elif "│" in line:
            parts = line.split("│")
            if column < len(parts) and parts[column].strip():
                current.append(parts[column].strip())
    return rows


def fits(out: str, width: int) -> bool:
    return all(cell_len(line.rstrip()) <= width for line in out.splitlines())


@pytest.mark.parametrize("width", (60, 80, 120))
def test_diagnose_fits_and_hides_columns_before_cutting_names(width, monkeypatch):
    result = cli(width, "diagnose", "resnet18", "--init", "glorot_uniform", "--dataset",
                 "digits:size=8", "--batch", "4", monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert fits(out, width), max(out.splitlines(), key=cell_len)
    flat = " ".join(out.split())
    assert "hidden layers, all relu" in flat and "activation ┃" not in out  # said once, not a column
    assert "glorot_uniform: forward ratio" in flat
    rows = table_rows(out)
    if width >= 80:
        assert "weights std" in out and "hidden to fit" not in out
        assert any(row.split("│")[1].strip() == "conv2_block1_1_relu" for row in rows)  # names whole
    else:
        assert out.rstrip().splitlines()[-1] == "hidden to fit: weights std, dead/sat. (see --json)"
        assert "conv2_block1_1_relu" in out and "…" not in out  # the columns went, the names stayed


def test_diagnose_with_several_activations_keeps_the_column(monkeypatch):
    out = cli(80, "diagnose", "plain_net:depth=3,width=4,activation=tanh", "--dataset", "digits:size=8", "--batch",
              "8", monkeypatch=monkeypatch).stdout
    assert "all tanh" in out and "activation" not in out.splitlines()[2]
    assert fits(out, 80)


@pytest.mark.parametrize("width", (60, 80, 120, 200))
def test_estimate_fits_with_every_note_and_remedy_whole(width, monkeypatch):
    args = ("estimate", "lenet5", "--device-memory", "2MiB", "--batch", "256")
    result = cli(width, *args, monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert fits(out, width), max(out.splitlines(), key=cell_len)
    data = json.loads(run_cli(*args, "--json").stdout)
    assert data["remedies"], "the batch should not fit"
    remedies = out[out.index("remedies, most bytes saved first"):]

    def squashed(texts) -> str:  # a word folded across lines is whole again without the spaces
        return "".join("".join(texts).split())

    what, how = squashed(cell_texts(remedies, 1)), squashed(cell_texts(remedies, 5))
    for remedy in data["remedies"]:  # what and how, whole (folded at worst, never cut)
        assert squashed(remedy["title"]) in what, (remedy, what)
        assert squashed(remedy["detail"]) in (how or what), (remedy, how or what)
    assert "…" not in out
    for term in data["budget"]["terms"]:
        assert f"\n{term['name']} " in out
    stacked = "MB (10^6 bytes)" not in out
    assert stacked == (width <= 80) or width == 120  # a note column only where it fits whole
    if not stacked:
        row = next(line for line in out.splitlines() if line.startswith("weights "))
        assert row.rstrip().endswith(next(t["note"] for t in data["budget"]["terms"] if t["name"] == "weights"))


@pytest.mark.parametrize("width", (60, 80, 120))
def test_the_compiled_plan_table_fits(width):
    from rich.console import Console

    from cnnreg.analysis.compiled import CompiledPlan
    from cnnreg.cli.analysis import plan_table
    from cnnreg.cli.render import natural_width

    # lenet5's step on a CPU at batch 21218 (XLA's figures, cnnreg estimate lenet5 --method compiled)
    plan = CompiledPlan("lenet5", 21218, "float32", "adam", "cpu", "cpu", 88_498_144, 740_808, 985_203_920,
                        740_496, 0, 1.0)
    hidden = set() if width >= 70 else {"bytes"}
    console = Console(width=width, record=True, file=open("/dev/null", "w"))
    console.print(plan_table(plan, width, hidden))
    out = console.export_text()
    assert fits(out, width) and "…" not in out
    assert ("1,073,702,376" in out) == (width >= 70)
    note = "what the step allocates: activations kept for backprop, gradients, scratch"
    assert any(note in text for text in cell_texts(out, 0) + cell_texts(out, 5)), out
    assert natural_width(plan_table(plan)) > 120  # the wide layout, where there is room


@pytest.mark.parametrize("names", [
    ["20261130-034016-resnet34-digits", "20261130-041500-lenet5-digits"],  # the default names carry both
    ["baseline", "with-mixup-and-cutmix"],  # --run-dir names carry neither
])
def test_runs_keeps_what_the_folder_names_do_not_carry(tmp_path, monkeypatch, names):
    for name, arch in zip(names, ("resnet34", "lenet5")):
        data = {"status": "completed", "config": {"architecture": arch, "dataset": "digits:size=8", "epochs": 30,
                                                  "regularisers": ["mixup=0.2", "cutmix"]},
                "best": {"val_accuracy": 0.9}, "test": {"accuracy": 0.8}, "epochs_done": 30, "seconds": 12.0}
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.json").write_text(json.dumps(data))
    out = cli(80, "runs", "--root", str(tmp_path), monkeypatch=monkeypatch).stdout
    assert fits(out, 80) and "…" not in out
    header = out.splitlines()[0]
    carried = names[0].startswith("2026")
    assert ("dataset" in header) == (not carried) and ("regs" in header or "regularisers" in header)
    assert "mixup=0.2" in out and "0.9000" in out
    assert json.loads(run_cli("runs", "--root", str(tmp_path), "--json").stdout)["runs"][0]["regularisers"] == [
        "mixup=0.2", "cutmix"]


def test_cut_middle_keeps_both_ends():
    from cnnreg.cli.render import cut_middle

    a, b = "zoo:https://example.org/zoos/alpha/zoo.json", "zoo:https://example.org/zoos/bravo/zoo.json"
    assert cut_middle(a, 100) == a
    assert cut_middle(a, 24) != cut_middle(b, 24) and cut_middle(a, 24).startswith("zoo:https://")
    assert all(cell_len(cut_middle(a, w)) <= w for w in range(0, 50))
    assert cut_middle("conv2_block1_1_relu", 12) == "conv2_…_relu"


def test_show_renders_inline_literals_with_one_backtick(monkeypatch):
    out = cli(100, "show", "googlenet", monkeypatch=monkeypatch).stdout
    assert "``" not in out and "`batchnorm=True`" in " ".join(out.split())
    assert reflow("Use ``pip install x`` here.", 80) == ["Use `pip install x` here."]


def test_a_warning_wraps_on_a_terminal_and_is_one_line_into_a_pipe(monkeypatch):
    import io

    from rich.console import Console

    from cnnreg.cli import render

    message = "glorot_uniform: activations shrink by more than a decade (forward ratio 0.0015) " * 3
    for terminal in (True, False):
        buffer = io.StringIO()
        monkeypatch.setattr(render, "err_console", Console(file=buffer, width=60, force_terminal=terminal,
                                                           color_system=None, highlight=False, soft_wrap=True))
        render.warn(message)
        lines = buffer.getvalue().splitlines()
        assert " ".join(" ".join(lines).split()) == "warning: " + " ".join(message.split())
        assert (len(lines) > 1 and all(cell_len(line) <= 60 for line in lines)) if terminal else len(lines) == 1


def test_cut_apart_keeps_what_tells_texts_apart():
    from cnnreg.cli.render import cut_apart

    zoos = ["zoo:https://example.org/zoos/alpha/zoo.json", "zoo:https://example.org/zoos/bravo/zoo.json", "cnnreg"]
    assert cut_apart(zoos, 100) == zoos
    for width in (8, 12, 16, 20, 30):
        shown = cut_apart(zoos, width)
        assert len(set(shown)) == 3 and shown[2] == "cnnreg" and all(cell_len(s) <= width for s in shown)
        assert "alpha" in shown[0] and "bravo" in shown[1]
    assert cut_apart(["x" * 30], 10) == [cut_middle("x" * 30, 10)]


def test_list_weights_tells_two_zoos_apart_at_60_columns(tmp_path, monkeypatch):
    zoos = []
    for team in ("alpha", "bravo"):
        folder = tmp_path / f"a-long-shared-folder-of-the-{team}-team" / "zoo"
        folder.mkdir(parents=True)
        entry = {"name": f"lenet5.{team}", "architecture": "lenet5", "dataset": "digits", "num_classes": 10,
                 "input_shape": [32, 32, 1], "files": {"model": {"url": "x.keras", "filename": "x.keras",
                                                                  "hash": "sha256:" + "0" * 64, "size": 1000}}}
        (folder / "zoo.json").write_text(json.dumps({"cnnreg_zoo": 1, "entries": [entry]}))
        zoos.append(str(folder))
    monkeypatch.setenv("CNNREG_ZOO", ",".join(zoos))
    monkeypatch.setenv("CNNREG_CACHE", str(tmp_path / "cache"))
    for width in (60, 80):
        out = cli(width, "list", "weights", "--filter", "lenet5.*", monkeypatch=monkeypatch).stdout
        providers = [row.split("│")[-1].strip() for row in table_rows(out)]
        assert len(providers) == 2 and "alpha" in providers[0] and "bravo" in providers[1], out
        assert fits(out, width), out
