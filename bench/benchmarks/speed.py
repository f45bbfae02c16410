"""Speed comparisons, measured side by side in one interleaved tapebench matrix.

    python -m bench.benchmarks.speed [--repeats 2] [--out DIR]

Runs the reference CNN -- as written with Keras BatchNormalization (``reference``) and
with the fused BatchNorm kernel (``reference_fused``) -- on synthetic data (batch 64) in
these CPU variants, every repeat in a fresh process, interleaved: function in float32 and
mixed_bfloat16, 10 steps per call in mixed_bfloat16, XLA, Keras fit (float32 and
mixed_bfloat16), function with 100
steps per call, and function fed by NumPy slicing and from staged tensors. Then prints,
from the stored records:

* the best tapebench variant's throughput against ``fit`` on the reference model as
  written (what most users run), against ``fit`` on the fused model, and against ``fit``
  on the same model in the same precision;
* steps per call 1 vs 10 vs 100;
* NumPy slicing vs tf.data vs staged input, with the input pipeline's share;
* the fused BatchNorm model against the model as written;
* the fraction of the measured matmul peak each variant reaches.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from bench.machine.fingerprint import SOURCE_ROOT
from reports.load import load_results
from reports.report import build_report

VARIANTS = (
    "function",
    "function/mixed_bfloat16",
    "function:10/mixed_bfloat16",
    "xla",
    "fit",
    "fit/mixed_bfloat16",
    "function:10",
    "function:100",
    "function+numpy",
    "function+staged",
)
MODELS = ("reference", "reference_fused")


def _row(table: pd.DataFrame, variant: str, model: str) -> pd.Series:
    return table[(table["variant"] == variant) & (table["model"] == model)].iloc[0]


def _ratio(table: pd.DataFrame, a: tuple[str, str], b: tuple[str, str]) -> str:
    ta, tb = _row(table, *a)["throughput"], _row(table, *b)["throughput"]
    return f"{ta / tb:.2f}x  ({ta:,.0f} vs {tb:,.0f} images/s)"


def main(argv: list[str] | None = None) -> int:
    """Runs the matrix and prints the ratios."""
    parser = argparse.ArgumentParser(prog="python -m bench.benchmarks.speed")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200, help="steps per epoch (2 epochs)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="tapebench-speed-"))
    cmd = [
        sys.executable,
        "-m",
        "bench",
        "run",
        "--variants",
        ",".join(VARIANTS),
        "--models",
        ",".join(MODELS),
        "--devices",
        "cpu",
        "--dataset",
        "synthetic",
        "--epochs",
        "2",
        "--steps-per-epoch",
        str(args.steps),
        "--eval-examples",
        "0",
        "--repeats",
        str(args.repeats),
        "--timeout",
        "600",
        "-o",
        str(out),
    ]
    done = subprocess.run(cmd, cwd=SOURCE_ROOT, stdout=subprocess.DEVNULL)
    if done.returncode not in (0, 1):
        return done.returncode
    table = build_report(load_results([out])).table
    cpu = table[table["device"] == "cpu"]
    hand = cpu[cpu["mode"] != "fit"].sort_values("throughput", ascending=False)
    best = (hand.iloc[0]["variant"], hand.iloc[0]["model"])
    fit, fused = ("fit/float32@cpu", "reference"), ("fit/float32@cpu", "reference_fused")
    f32, f32_fused = (
        ("function/float32@cpu", "reference"),
        ("function/float32@cpu", "reference_fused"),
    )
    print(f"results: {out}\n")
    print(f"best tapebench variant: {best[0]} on {best[1]}")
    print(f"  vs fit on the reference model as written: {_ratio(cpu, best, fit)}")
    print(f"  vs fit on the fused model:                {_ratio(cpu, best, fused)}")
    same = (f"fit/{_row(cpu, *best)['precision']}@cpu", best[1])
    print(f"  vs fit, same model and precision:         {_ratio(cpu, best, same)}")
    print(f"function vs fit, same model:                {_ratio(cpu, f32, fit)}")
    print(f"fused BatchNorm vs Keras BatchNorm, function float32: {_ratio(cpu, f32_fused, f32)}")
    bf16 = "function/mixed_bfloat16@cpu"
    print(
        f"fused BatchNorm vs Keras BatchNorm, function bfloat16: "
        f"{_ratio(cpu, (bf16, 'reference_fused'), (bf16, 'reference'))}"
    )
    for model in MODELS:
        print(f"\n{model}:")
        for calls in ("10", "100"):
            print(
                f"  steps per call {calls} vs 1:   "
                f"{_ratio(cpu, (f'function:{calls}/float32@cpu', model), (f32[0], model))}"
            )
        for feed in ("numpy", "staged"):
            print(
                f"  input {feed} vs tf.data:{' ' * (7 - len(feed))}"
                f"{_ratio(cpu, (f'function/float32+{feed}@cpu', model), (f32[0], model))}"
            )
        shares = ", ".join(
            f"{v}: {_row(cpu, v, model)['input_share']:.1%}"
            for v in (f32[0], "function/float32+numpy@cpu", "function/float32+staged@cpu")
        )
        print(f"  input share of step time: {shares}")
    print("\nfraction of the measured peak:")
    for _, row in cpu.sort_values("fraction_of_peak", ascending=False).iterrows():
        print(
            f"  {row['variant']:<30} {row['model']:<16} {row['achieved_flops'] / 1e9:7.1f} "
            f"of {row['peak_flops'] / 1e9:6.1f} GFLOP/s = {row['fraction_of_peak']:.1%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
