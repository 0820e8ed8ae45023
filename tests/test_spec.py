"""The component-spec grammar and conversion by type hints."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

import pytest

from cnnreg.errors import ParameterError, SpecError
from cnnreg.spec import PRIMARY, Range, coerce, format_spec, parse


@pytest.mark.parametrize(
    "text, name, params",
    [
        ("he_normal", "he_normal", {}),
        ("l2=1e-4", "l2", {PRIMARY: "1e-4"}),
        ("dropout=0.5", "dropout", {PRIMARY: "0.5"}),
        ("variance_scaling:scale=2,mode=fan_avg", "variance_scaling", {"scale": "2", "mode": "fan_avg"}),
        ("single_conv:filters=200,kernel=5", "single_conv", {"filters": "200", "kernel": "5"}),
        ("arch:input_shape=32,32,3,width=2", "arch", {"input_shape": "32,32,3", "width": "2"}),
        ("folder:/data/flowers,resize=crop", "folder", {PRIMARY: "/data/flowers", "resize": "crop"}),
        ("tfds:mnist,split=train[:10%],x=1", "tfds", {PRIMARY: "mnist", "split": "train[:10%]", "x": "1"}),
        ("cnnreg-fixup/fixup", "cnnreg-fixup/fixup", {}),
        ("  he_normal  ", "he_normal", {}),
    ],
)
def test_parse(text, name, params):
    spec = parse(text)
    assert (spec.name, spec.params) == (name, params)


@pytest.mark.parametrize(
    "text, message",
    [
        ("l2==1", "one '=' and a value"),
        (":x=1", "name is missing"),
        ("he_normal:", "nothing after ':'"),
        ("", "empty component spec"),
        ("a:b=1,b=2", "given twice"),
        ("a:=1", "not a parameter name"),
        ("a:b=", "needs one '=' and a value"),
        ("bad name", "is not a component name"),
        ("l2=", "expected l2=VALUE"),
    ],
)
def test_parse_errors_are_one_line(text, message):
    with pytest.raises(SpecError) as info:
        parse(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_format_spec_round_trips():
    params = {"scale": 2.0, "mode": "fan_avg", "shape": (32, 32, 3), "flag": True}
    text = format_spec("variance_scaling", params)
    assert text == "variance_scaling:scale=2.0,mode=fan_avg,shape=32x32x3,flag=true"
    assert parse(text).params["shape"] == "32x32x3"


@pytest.mark.parametrize(
    "value, hint, expected",
    [
        ("3", int, 3),
        ("1e3", int, 1000),
        ("0.5", float, 0.5),
        ("2", float, 2.0),
        ("true", bool, True),
        ("off", bool, False),
        ("FAN_AVG", Literal["fan_in", "fan_avg"], "fan_avg"),
        ("224x224x3", tuple[int, int, int], (224, 224, 3)),
        ("224,224,3", tuple[int, ...], (224, 224, 3)),
        ("none", Optional[int], None),
        ("7", Optional[int], 7),
        ("7", int | None, 7),
        ("x", str, "x"),
        ((32, 32, 3), tuple[int, int, int], (32, 32, 3)),
    ],
)
def test_coerce(value, hint, expected):
    assert coerce(value, hint, where="p") == expected


@pytest.mark.parametrize(
    "value, hint, message",
    [
        ("abc", float, "must be a number"),
        ("1.5", int, "must be an integer"),
        ("maybe", bool, "true or false"),
        ("fan_ave", Literal["fan_in", "fan_avg"], "did you mean 'fan_avg'"),
        ("224x224", tuple[int, int, int], "with 3 values"),
        ("1.5", Annotated[float, Range(0, 1, max_inclusive=False)], "must be in [0, 1)"),
        ("-1", Annotated[float, Range(0, None, min_inclusive=False)], "must be > 0"),
        ("nan", float, "must be a number"),
    ],
)
def test_coerce_errors(value, hint, message):
    with pytest.raises(ParameterError) as info:
        coerce(value, hint, where="p")
    assert message in str(info.value)
