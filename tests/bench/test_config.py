import argparse
import dataclasses
import math
import re

import pytest

from bench.cli.parsing import parse_variant, parse_variants
from bench.matrix.cells import (
    STANDARD_VARIANTS,
    Cell,
    RunOptions,
    choose_variants,
    create_cells,
    create_variants,
)
from reports.schema import variant_label
from trainloop.config import Variant, Workload


def test_standard_variants_on_each_device():
    variants = create_variants(devices=["cpu", "gpu"])
    assert [v.name for v in variants[:6]] == [
        "eager/float32@cpu",
        "function/float32@cpu",
        "xla/float32@cpu",
        "function/mixed_bfloat16@cpu",
        "function/mixed_float16@cpu",
        "fit/float32@cpu",
    ]
    assert len(variants) == 2 * len(STANDARD_VARIANTS)
    assert {v.device for v in variants[6:]} == {"gpu"}


def test_cross_product_with_defaults_for_the_missing_axis():
    assert [v.name for v in create_variants(["eager", "xla"], devices=["cpu"])] == [
        "eager/float32@cpu",
        "xla/float32@cpu",
    ]
    names = [v.name for v in create_variants(None, ["float32", "mixed_bfloat16"], ["cpu"])]
    assert names == ["function/float32@cpu", "function/mixed_bfloat16@cpu"]
    assert len(create_variants(["eager", "eager"], ["float32"], ["cpu", "cpu"])) == 1


def test_variant_parse_and_name():
    assert Variant.parse("xla") == Variant("xla", "float32", "cpu")
    assert Variant.parse("function/mixed_float16@gpu").name == "function/mixed_float16@gpu"
    with pytest.raises(ValueError, match="mode 'jit' is not one of eager, function, xla"):
        Variant.parse("jit")


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("batch_size", 0, "batch_size=0 must be an integer >= 1"),
        ("epochs", 1.5, "epochs=1.5 must be an integer >= 1"),
        ("steps_per_epoch", 0, "steps_per_epoch=0 must be an integer >= 1 or None"),
        ("dataset", "cifar10", "dataset='cifar10' is not one of mnist, fashion_mnist, synthetic"),
        ("learning_rate", -1.0, "learning_rate=-1.0 must be a finite positive number"),
        ("learning_rate", math.inf, "learning_rate=inf must be a finite positive number"),
        ("warmup_steps", True, "warmup_steps=True must be an integer"),
    ],
)
def test_workload_errors_name_the_field_and_value(field, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Workload(**{field: value})


def test_reference_workload_defaults():
    w = Workload()
    assert (w.model, w.dataset, w.batch_size, w.epochs, w.learning_rate) == (
        "reference",
        "mnist",
        64,
        25,
        1e-3,
    )
    assert w.steps_per_epoch is None and w.eval_examples is None


@pytest.mark.parametrize(
    "text",
    [
        "function",
        "xla/mixed_bfloat16",
        "function:10",
        "function:100/mixed_bfloat16",
        "function+staged",
        "eager/mixed_float16+numpy@gpu",
        "fit:4",
        "fit/mixed_bfloat16@gpu",
        "function*mirrored:2",
        "xla/mixed_bfloat16@gpu*multiworker:4",
    ],
)
def test_variant_grammar_round_trips_and_matches_the_record_label(text):
    variant = Variant.parse(text)
    assert Variant.parse(variant.name) == variant
    assert variant_label(dataclasses.asdict(variant)) == variant.name


def test_variant_parse_details():
    v = Variant.parse("function:10/mixed_bfloat16+staged@gpu")
    assert (v.mode, v.steps_per_call, v.precision, v.input_mode, v.device) == (
        "function",
        10,
        "mixed_bfloat16",
        "staged",
        "gpu",
    )
    with pytest.raises(ValueError, match="steps per call 'ten'"):
        Variant.parse("function:ten")
    with pytest.raises(ValueError, match="input 'disk' is not one of tfdata"):
        Variant.parse("function+disk")
    with pytest.raises(ValueError, match="steps per call '0' is not an integer >= 1"):
        Variant.parse("function:0")


@pytest.mark.parametrize(
    "text, message",
    [
        ("eager/", "precision after '/' is empty: expected one of float32,"),
        ("eager:", "steps per call after ':' is empty: expected an integer >= 1"),
        ("eager+", "input after '+' is empty: expected one of tfdata,"),
        ("eager@", "device after '@' is empty: expected one of cpu, gpu"),
        ("function*", "strategy after '*' is empty: expected one of mirrored, multiworker"),
        ("function*mirrored:", "replicas after ':' is empty"),
        ("function*none", "strategy 'none' is not one of mirrored, multiworker"),
        ("/float32", "mode is empty: expected one of eager,"),
    ],
)
def test_a_separator_without_its_part_is_refused(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Variant.parse(text)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("eager:4", "eager runs one step per Python call"),
        ("xla:10", "XLA compiles an in-graph multi-step loop for minutes"),
        ("function:10+staged", "loops over the tf.data iterator in-graph"),
        ("fit+numpy", "fit reads the tf.data pipeline"),
        ("function:10", None),
        ("xla:10@gpu", None),
        ("fit:10", None),
        ("eager+staged", None),
        ("eager*mirrored:2", "distributed steps run compiled"),
        ("xla*multiworker:2", "XLA cannot compile distributed steps on CPUs"),
        ("function+staged*mirrored:2", "distributed tf.data pipeline"),
        ("function*mirrored:2", None),
        ("xla@gpu*mirrored:4", None),
    ],
)
def test_unsupported_combinations_say_why(text, reason):
    found = Variant.parse(text).unsupported_reason()
    assert (found is None) if reason is None else (reason in found)


def test_run_options_validation(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="exists and is not a directory"):
        RunOptions(output_dir=tmp_path / "file")
    with pytest.raises(ValueError, match="intra_op_threads=-1"):
        RunOptions(intra_op_threads=-1)
    with pytest.raises(ValueError, match="nothing to run"):
        create_cells([], Workload())


def test_strategy_grammar_and_checks():
    v = Variant.parse("function/mixed_bfloat16@cpu*mirrored")
    assert (v.strategy, v.replicas) == ("mirrored", 2)
    assert Variant.parse("function*multiworker:3").replicas == 3
    with pytest.raises(ValueError, match="strategy 'ring'"):
        Variant.parse("function*ring:2")
    with pytest.raises(ValueError, match="replicas=2 needs a strategy"):
        Variant(replicas=2)
    with pytest.raises(ValueError, match="batch_size=65 does not split evenly over 2 replicas"):
        create_cells([Variant.parse("function*mirrored:2")], Workload(batch_size=65))


@pytest.mark.parametrize(
    "text, devices, names",
    [
        ("function,xla", ["cpu", "gpu"], ["function@cpu", "xla@cpu", "function@gpu", "xla@gpu"]),
        ("function@gpu,xla", ["cpu"], ["xla@cpu", "function@gpu"]),
        ("function,function@cpu", ["cpu", "gpu"], ["function@cpu", "function@gpu"]),
        ("eager@gpu,xla@cpu", ["cpu", "gpu"], ["xla@cpu", "eager@gpu"]),
    ],
)
def test_a_variant_naming_its_device_runs_there_only(text, devices, names):
    variants = choose_variants(parse_variants(text), devices)
    assert [v.name.replace("/float32", "") for v in variants] == names


def test_variant_choices_parse_once_into_variants():
    (choice,) = parse_variants("function:10/mixed_bfloat16+staged@gpu*mirrored:2")
    assert choice.variant == Variant.parse("function:10/mixed_bfloat16+staged@gpu*mirrored:2")
    assert choice.device_given and choice.to_dict()["device"] == "gpu"
    assert "device" not in parse_variant("function:10").to_dict()
    with pytest.raises(argparse.ArgumentTypeError, match="device 'tpu' is not one of cpu, gpu"):
        parse_variants("function,xla@tpu")
    with pytest.raises(argparse.ArgumentTypeError, match="expected one MODE"):
        parse_variant("eager,xla")


def test_cells_round_trip_through_their_dict_and_old_cells_get_defaults():
    cell = Cell(Variant.parse("function:10/mixed_bfloat16"), Workload(model="tiny"))
    assert Cell.from_dict(cell.to_dict()) == cell
    old = {k: v for k, v in Cell(Variant(), Workload()).to_dict().items() if k != "input_mode"}
    assert Cell.from_dict(old).variant.input_mode == "tfdata"
    with pytest.raises(ValueError, match="unknown field"):
        Cell.from_dict({**old, "colour": "red"})


@pytest.mark.parametrize(
    "examples, batch, drop, cap, per_pass, per_epoch",
    [
        (100, 32, True, None, 3, 3),
        (100, 32, False, None, 4, 4),
        (100, 32, True, 2, 3, 2),
        (100, 32, True, 10, 3, 3),  # an epoch is at most one pass
        (96, 32, False, None, 3, 3),
        (10, 64, True, 5, 0, 0),
    ],
)
def test_steps_of_a_pass_and_of_an_epoch(examples, batch, drop, cap, per_pass, per_epoch):
    w = Workload(batch_size=batch, drop_remainder=drop, steps_per_epoch=cap)
    assert (w.steps_per_pass(examples), w.steps_in_epoch(examples)) == (per_pass, per_epoch)


@pytest.mark.parametrize("drop", [True, False])
def test_a_training_set_smaller_than_a_batch_is_refused(drop):
    w = Workload(batch_size=64, drop_remainder=drop)
    w.check_train_size(64)
    with pytest.raises(ValueError, match="holds 10 examples, fewer than one batch of 64"):
        w.check_train_size(10)
