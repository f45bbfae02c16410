"""What ``tapebench tune`` searches: configurations that keep the workload's arithmetic,
the ones this machine makes plausible, and the ones it refuses, with the reason.

A configuration is a :class:`~bench.matrix.cells.Cell`: the same workload (batch size,
optimizer, model math) under another execution mode, steps per call, input mode,
precision, model implementation (``reference_fused`` is ``reference``'s arithmetic with
fused BatchNorm kernels) or run settings (thread pools, oneDNN, XLA auto-clustering).
Mixed precision changes the arithmetic's precision, so it is searched only where the CPU
has that arithmetic and its measured matmul peak beats float32's, and the accuracy guard
then checks it learns as well.

The search meets the space in two steps: the *core* (model x execution x precision,
default settings) first; then one-knob *variations* of the leading configurations (input
mode, steps per call, threads, oneDNN, XLA auto-clustering), and their combination.
"""

from __future__ import annotations

import dataclasses
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.machine.fingerprint import machine_fingerprint
from bench.matrix.cells import Cell, RunSettings
from trainloop.config import Variant

# CPU flags (/proc/cpuinfo: x86 "flags", Arm "Features") that mean native arithmetic.
PRECISION_FLAGS = {
    "mixed_bfloat16": ("avx512_bf16", "amx_bf16", "bf16"),
    "mixed_float16": ("avx512_fp16", "amx_fp16", "fphp"),
}
EXECUTIONS = (("function", 1), ("function", 10), ("xla", 1), ("fit", 1))
# XLA auto-clustering of a plain tf.function (on the CPU it needs the global-jit flag).
AUTO_JIT = "--tf_xla_auto_jit=2 --tf_xla_cpu_global_jit"


@dataclass(frozen=True)
class Machine:
    """What decides the space: the CPU's flags and cores, GPUs, measured peaks."""

    arch: str
    cpu_count: int
    cpu_flags: frozenset[str]
    gpu_driver: str | None = None
    peaks: Mapping[str, float] = field(default_factory=dict)  # "cpu/float32" -> FLOP/s

    def peak(self, precision: str) -> float | None:
        """The measured CPU matmul peak in ``precision`` (FLOP/s), if known."""
        return self.peaks.get(f"cpu/{precision}")


def read_cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The first processor's flags (x86) or features (Arm); empty where unreadable."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return frozenset()
    for line in lines:
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def read_machine(peaks: Mapping[str, float]) -> Machine:
    """This machine, with the matmul ``peaks`` measured for it."""
    machine = machine_fingerprint()
    return Machine(
        arch=platform.machine(),
        cpu_count=int(machine["cpu_count"] or 1),
        cpu_flags=read_cpu_flags(),
        gpu_driver=machine["gpu_driver"],
        peaks=dict(peaks),
    )


@dataclass(frozen=True)
class Refusal:
    """A configuration not searched, and why."""

    what: str
    reason: str

    def __str__(self) -> str:
        return f"{self.what}: {self.reason}"


def flag_refusal(precision: str, machine: Machine) -> Refusal | None:
    """Refuses a mixed precision the CPU has no arithmetic for (before measuring it)."""
    flags = PRECISION_FLAGS.get(precision)
    if flags is None or machine.cpu_flags & set(flags):
        return None
    kind = precision.removeprefix("mixed_")
    return Refusal(
        precision,
        f"no {kind} arithmetic on this CPU (no {'/'.join(flags)}): its kernels convert "
        "to and from float32 and run slower than float32",
    )


def peak_refusal(precision: str, machine: Machine) -> Refusal | None:
    """Refuses a mixed precision whose measured matmul peak does not beat float32's:
    the lower precision would buy nothing here."""
    mine, base = machine.peak(precision), machine.peak("float32")
    if mine is None or base is None or mine > base:
        return None
    return Refusal(
        precision,
        f"its measured matmul peak on this CPU ({mine / 1e9:,.0f} GFLOP/s) is below "
        f"float32's ({base / 1e9:,.0f} GFLOP/s): the lower precision buys nothing here",
    )


@dataclass(frozen=True)
class Change:
    """One knob turned: variant fields and run settings laid over a configuration."""

    knob: str
    label: str
    variant: tuple[tuple[str, object], ...] = ()
    settings: RunSettings = field(default_factory=RunSettings)

    def apply(self, cell: Cell) -> Cell:
        """``cell`` with this change."""
        variant = dataclasses.replace(cell.variant, **dict(self.variant))  # type: ignore[arg-type]
        s = cell.settings
        env = {**dict(s.env), **dict(self.settings.env)}
        settings = RunSettings.create(
            self.settings.intra_op_threads or s.intra_op_threads,
            self.settings.inter_op_threads or s.inter_op_threads,
            **env,
        )
        return Cell(variant, cell.workload, settings)


@dataclass(frozen=True)
class Variation:
    """A leading configuration with one knob turned."""

    leader: Cell
    change: Change
    cell: Cell


@dataclass(frozen=True)
class Space:
    """The configurations of one workload on one machine (see the module docstring).

    Attributes:
      default: the workload as given, ``function/float32`` on the CPU, default settings.
      machine: what this machine has.
      precisions: the precisions to consider (float32 always first).
    """

    default: Cell
    machine: Machine
    precisions: tuple[str, ...] = ("float32", "mixed_bfloat16", "mixed_float16")

    @property
    def fit(self) -> Cell:
        """Keras ``fit`` on the workload as given: what most users run."""
        return dataclasses.replace(self.default, variant=Variant("fit"))

    def baselines(self) -> list[Cell]:
        """The configurations every speedup is measured against."""
        return [self.default, self.fit]

    def searched_precisions(self) -> list[str]:
        """float32, and each mixed precision nothing refuses."""
        refused = {r.what for r in self.refusals()}
        return [p for p in self.precisions if p not in refused]

    def refusals(self) -> list[Refusal]:
        """What is not searched on this machine, and why."""
        out = [Refusal("gpu", self._gpu_reason())]
        for precision in self.precisions[1:]:
            refusal = flag_refusal(precision, self.machine) or peak_refusal(precision, self.machine)
            if refusal is not None:
                out.append(refusal)
        out.append(Refusal("xla:10", Variant("xla", steps_per_call=10).unsupported_reason() or ""))
        out.append(
            Refusal(
                "eager",
                "runs every op from Python, one at a time (6x slower than function on the "
                "reference CNN): it cannot be the fastest",
            )
        )
        out.append(
            Refusal(
                "oneDNN off with mixed precision",
                "oneDNN's switch is tried on float32 configurations only: the CPU's 16-bit "
                "arithmetic is reached through oneDNN's kernels",
            )
        )
        return out

    def _gpu_reason(self) -> str:
        if self.machine.gpu_driver is None:
            return "no GPU on this machine (no NVIDIA driver found)"
        return "tune searches CPU configurations; compare GPU variants with `tapebench run`"

    def core(self) -> list[Cell]:
        """Model x execution x precision, default settings: the baselines first."""
        models = [self.default.workload.model]
        if models[0] == "reference":
            models.append("reference_fused")
        cells = [
            Cell(
                Variant(mode, precision, steps_per_call=steps),
                self.default.workload.replace(model=model),
            )
            for model in models
            for precision in self.searched_precisions()
            for mode, steps in EXECUTIONS
        ]
        return list(dict.fromkeys([*self.baselines(), *cells]))

    def changes(self, leader: Cell) -> list[Change]:
        """The one-knob changes that make sense for ``leader``."""
        v, cores = leader.variant, self.machine.cpu_count
        out = []
        if v.steps_per_call == 1 and v.mode in ("function", "xla"):
            out += [Change("input", f"+{m}", (("input_mode", m),)) for m in ("staged", "numpy")]
        if v.mode == "fit" and v.steps_per_call == 1:
            out.append(Change("steps", "steps per call 10", (("steps_per_call", 10),)))
        if cores > 1 and not leader.settings.intra_op_threads:
            threads = RunSettings(intra_op_threads=cores, inter_op_threads=1)
            out.append(Change("threads", f"intra {cores}, inter 1", settings=threads))
        if v.precision == "float32" and self.machine.arch in ("x86_64", "AMD64"):
            off = RunSettings.create(TF_ENABLE_ONEDNN_OPTS="0")
            out.append(Change("onednn", "oneDNN off", settings=off))
        if v.mode in ("function", "fit"):
            jit = RunSettings.create(TF_XLA_FLAGS=AUTO_JIT)
            out.append(Change("autojit", "XLA auto-clustering", settings=jit))
        return out

    def variations(self, leader: Cell) -> list[Variation]:
        """``leader`` with each of its :meth:`changes`, where the result can run."""
        made = [Variation(leader, c, c.apply(leader)) for c in self.changes(leader)]
        return [m for m in made if m.cell.variant.unsupported_reason() is None]

    def combine(self, leader: Cell, better: Sequence[Variation]) -> Cell | None:
        """``leader`` with every change of ``better`` (one per knob: the first given),
        where that makes a new configuration that can run; else None."""
        chosen = {v.change.knob: v.change for v in reversed(better)}
        if len(chosen) < 2:
            return None
        cell = leader
        for change in chosen.values():
            cell = change.apply(cell)
        return cell if cell.variant.unsupported_reason() is None else None
