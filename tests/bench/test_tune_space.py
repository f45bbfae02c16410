"""What tune searches on a given machine, what it refuses, and why."""

from __future__ import annotations

from pathlib import Path

from bench.matrix.cells import Cell, RunSettings
from bench.tune.space import AUTO_JIT, Machine, Space, read_cpu_flags
from trainloop.config import Variant, Workload

DEFAULT = Cell(Variant("function"), Workload(dataset="synthetic", epochs=1))
SAPPHIRE = frozenset({"avx512f", "avx512_bf16", "amx_bf16", "avx512_fp16"})
PEAKS = {"cpu/float32": 218e9, "cpu/mixed_bfloat16": 664e9, "cpu/mixed_float16": 127e9}


def _reasons(space: Space) -> dict[str, str]:
    return {r.what: r.reason for r in space.refusals()}


def test_a_cpu_without_16_bit_arithmetic_searches_float32_only_and_says_why():
    space = Space(DEFAULT, Machine("x86_64", 2, frozenset({"avx2", "fma"})))
    assert space.searched_precisions() == ["float32"]
    reasons = _reasons(space)
    assert reasons["mixed_float16"].startswith(
        "no float16 arithmetic on this CPU (no avx512_fp16/amx_fp16/fphp)"
    )
    assert "no bfloat16 arithmetic" in reasons["mixed_bfloat16"]
    assert reasons["gpu"] == "no GPU on this machine (no NVIDIA driver found)"
    assert "XLA compiles an in-graph multi-step loop" in reasons["xla:10"]


def test_a_precision_whose_measured_peak_is_below_float32s_is_refused():
    space = Space(DEFAULT, Machine("x86_64", 2, SAPPHIRE, peaks=PEAKS))
    assert space.searched_precisions() == ["float32", "mixed_bfloat16"]
    assert _reasons(space)["mixed_float16"] == (
        "its measured matmul peak on this CPU (127 GFLOP/s) is below float32's "
        "(218 GFLOP/s): the lower precision buys nothing here"
    )


def test_the_core_holds_the_baselines_first_and_the_fused_model():
    space = Space(DEFAULT, Machine("x86_64", 2, SAPPHIRE, peaks=PEAKS))
    core = space.core()
    assert core[:2] == [DEFAULT, Cell(Variant("fit"), DEFAULT.workload)]
    assert len(core) == 2 * 2 * 4  # models x precisions x executions
    assert {c.workload.model for c in core} == {"reference", "reference_fused"}
    assert all(c.variant.unsupported_reason() is None for c in core)
    assert all(c.workload.batch_size == 64 and c.settings.is_default for c in core)
    tiny = Space(Cell(Variant(), DEFAULT.workload.replace(model="tiny")), space.machine)
    assert {c.workload.model for c in tiny.core()} == {"tiny"}


def test_variations_turn_one_knob_where_it_makes_sense():
    space = Space(DEFAULT, Machine("x86_64", 2, SAPPHIRE, peaks=PEAKS))
    made = {v.change.knob: v.cell for v in space.variations(DEFAULT)}
    assert set(made) == {"input", "threads", "onednn", "autojit"}
    assert made["threads"].settings == RunSettings(intra_op_threads=2, inter_op_threads=1)
    assert made["autojit"].settings.env == (("TF_XLA_FLAGS", AUTO_JIT),)
    labels = [v.change.label for v in space.variations(DEFAULT)]
    assert labels[:2] == ["+staged", "+numpy"]
    fast = Cell(Variant("function", "mixed_bfloat16", steps_per_call=10), DEFAULT.workload)
    knobs = [v.change.knob for v in space.variations(fast)]
    assert knobs == ["threads", "autojit"]  # no input modes for :10, no oneDNN off in bf16
    fit = {v.change.knob: v.cell for v in space.variations(space.fit)}
    assert fit["steps"].variant.steps_per_call == 10 and "input" not in fit
    arm = Space(DEFAULT, Machine("aarch64", 1, frozenset({"bf16"})))
    assert [v.change.knob for v in arm.variations(DEFAULT)] == ["input", "input", "autojit"]


def test_combining_keeps_one_change_per_knob_and_merges_settings():
    space = Space(DEFAULT, Machine("x86_64", 4, SAPPHIRE, peaks=PEAKS))
    by_label = {v.change.label: v for v in space.variations(DEFAULT)}
    better = [by_label["+staged"], by_label["+numpy"], by_label["oneDNN off"]]
    better.append(by_label["intra 4, inter 1"])
    combined = space.combine(DEFAULT, better)
    assert combined is not None and combined.variant.input_mode == "staged"
    assert combined.settings == RunSettings.create(4, 1, TF_ENABLE_ONEDNN_OPTS="0")
    assert space.combine(DEFAULT, better[:1]) is None  # one knob: nothing to combine


def test_cpu_flags_are_read_from_x86_flags_or_arm_features(tmp_path: Path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu avx2 amx_bf16\n\nprocessor\t: 1\n")
    assert read_cpu_flags(x86) == {"fpu", "avx2", "amx_bf16"}
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16\n")
    assert "bf16" in read_cpu_flags(arm)
    assert read_cpu_flags(tmp_path / "missing") == frozenset()
