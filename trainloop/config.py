"""What runs: the execution variant and the training workload.

Pure Python (no TensorFlow import), so the orchestrating parent process can validate and
describe cells without starting a TensorFlow runtime.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

MODES = ("eager", "function", "xla", "fit")
INPUT_MODES = ("tfdata", "numpy", "staged")
STRATEGIES = ("none", "mirrored", "multiworker")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
DEVICES = ("cpu", "gpu")
MODELS = ("reference", "reference_fused", "tiny")
DATASETS = ("mnist", "fashion_mnist", "synthetic")


def _check_choice(field: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{field}={value!r} is not one of {', '.join(choices)}")


def _check_int(field: str, value: object, minimum: int, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        hint = " or None" if optional else ""
        raise ValueError(f"{field}={value!r} must be an integer >= {minimum}{hint}")


def _check_part(name: str, separator: str, value: str, choices: tuple[str, ...]) -> None:
    """One named part of a variant's text: absent (no separator), or one of ``choices``."""
    if (separator or name == "mode") and value not in choices:
        expected = f"one of {', '.join(choices)}"
        if not value:
            after = f" after {separator!r}" if separator else ""
            raise ValueError(f"{name}{after} is empty: expected {expected}")
        raise ValueError(f"{name} {value!r} is not {expected}")


def _count_part(name: str, separator: str, value: str, default: int) -> int:
    """One numeric part of a variant's text (``:N``): ``default`` when absent."""
    if not separator:
        return default
    if not value:
        raise ValueError(f"{name} after {separator!r} is empty: expected an integer >= 1")
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name} {value!r} is not an integer >= 1")
    return int(value)


@dataclass(frozen=True)
class Variant:
    """How the training step executes.

    Attributes:
      mode: ``eager`` (plain Python), ``function`` (``tf.function``), ``xla``
        (``tf.function(jit_compile=True)``) or ``fit`` (Keras ``model.fit`` with its default
        compile settings, for comparison with what most users run).
      precision: ``float32``, ``mixed_bfloat16`` or ``mixed_float16`` (the latter with
        dynamic loss scaling).
      device: ``cpu`` or ``gpu``.
      steps_per_call: training steps per call: an in-graph loop over the tf.data iterator
        for ``function``/``xla``, ``steps_per_execution`` for ``fit``.
      input_mode: how batches reach the step: ``tfdata`` (a prefetching tf.data pipeline),
        ``numpy`` (NumPy slicing per step, as the classic tutorial does) or ``staged`` (the
        whole dataset on the device, batches gathered inside the step).
      strategy: ``none``; ``mirrored`` (tf.distribute.MirroredStrategy over ``replicas``
        GPUs, or logical CPU devices); ``multiworker`` (MultiWorkerMirroredStrategy over
        ``replicas`` worker processes, one device each).
      replicas: replicas the global batch is split across (1 without a strategy).
    """

    mode: str = "function"
    precision: str = "float32"
    device: str = "cpu"
    steps_per_call: int = 1
    input_mode: str = "tfdata"
    strategy: str = "none"
    replicas: int = 1

    def __post_init__(self) -> None:
        _check_choice("mode", self.mode, MODES)
        _check_choice("precision", self.precision, PRECISIONS)
        _check_choice("device", self.device, DEVICES)
        _check_int("steps_per_call", self.steps_per_call, 1)
        _check_choice("input_mode", self.input_mode, INPUT_MODES)
        _check_choice("strategy", self.strategy, STRATEGIES)
        _check_int("replicas", self.replicas, 1)
        if self.strategy == "none" and self.replicas != 1:
            raise ValueError(f"replicas={self.replicas} needs a strategy (mirrored or multiworker)")

    @property
    def name(self) -> str:
        """A short label: ``MODE[:STEPS_PER_CALL]/PRECISION[+INPUT]@DEVICE[*STRATEGY:N]``."""
        calls = f":{self.steps_per_call}" if self.steps_per_call != 1 else ""
        feed = f"+{self.input_mode}" if self.input_mode != "tfdata" else ""
        spread = f"*{self.strategy}:{self.replicas}" if self.strategy != "none" else ""
        return f"{self.mode}{calls}/{self.precision}{feed}@{self.device}{spread}"

    @classmethod
    def parse(cls, text: str) -> Variant:
        """Parses ``MODE[:STEPS_PER_CALL][/PRECISION][+INPUT][@DEVICE][*STRATEGY[:N]]``,
        e.g. ``xla``, ``function:10``, ``function/mixed_bfloat16+staged@gpu``,
        ``function*mirrored:2`` (N defaults to 2).

        Raises:
          ValueError: naming the part of the grammar that is wrong, in the grammar's
            words (a separator must be followed by a value: ``eager/`` is refused).
        """
        text = text.strip()
        head_text, star, spread = text.partition("*")
        strategy, colon_n, count = spread.partition(":")
        rest, at, device = head_text.partition("@")
        rest, plus, feed = rest.partition("+")
        head, slash, precision = rest.partition("/")
        mode, colon, calls = head.partition(":")
        _check_part("mode", "", mode, MODES)
        _check_part("precision", slash, precision, PRECISIONS)
        _check_part("input", plus, feed, INPUT_MODES)
        _check_part("device", at, device, DEVICES)
        _check_part("strategy", star, strategy, STRATEGIES[1:])
        return cls(
            mode=mode,
            precision=precision or "float32",
            device=device or "cpu",
            steps_per_call=_count_part("steps per call", colon, calls, 1),
            input_mode=feed or "tfdata",
            strategy=strategy or "none",
            replicas=_count_part("replicas", colon_n, count, 2 if star else 1),
        )

    def unsupported_reason(self) -> str | None:
        """Why this combination is not run (it is recorded as skipped), or None."""
        if self.steps_per_call > 1 and self.mode == "eager":
            return (
                "eager runs one step per Python call; steps per call > 1 needs function, xla or fit"
            )
        if self.steps_per_call > 1 and self.mode == "xla" and self.device == "cpu":
            return (
                "XLA compiles an in-graph multi-step loop for minutes on the CPU and then "
                "runs it at about 1 s per step; use function for steps per call > 1"
            )
        if self.steps_per_call > 1 and self.input_mode != "tfdata":
            return "steps per call > 1 loops over the tf.data iterator in-graph; use tfdata input"
        if self.mode == "fit" and self.input_mode != "tfdata":
            return "fit reads the tf.data pipeline; use tfdata input"
        if self.strategy != "none":
            if self.mode not in ("function", "xla"):
                return "distributed steps run compiled (function or xla), not eager or fit"
            if self.mode == "xla" and self.device == "cpu":
                return (
                    "TensorFlow's XLA cannot compile distributed steps on CPUs (no "
                    "collectives on CPU devices under XLA; mirrored over logical CPUs "
                    "fails on variables spread across devices); it can on GPUs"
                )
            if self.input_mode != "tfdata" or self.steps_per_call != 1:
                return "distributed steps read a distributed tf.data pipeline, one step a call"
        return None


@dataclass(frozen=True)
class Workload:
    """What is trained and how much of it.

    The defaults are the reference workload: the VGG-style CNN on MNIST, batch 64, Adam at
    1e-3 with per-step inverse-time decay over 25 epochs, full epochs and a full test set.

    Attributes:
      model: ``reference`` (the VGG-style CNN) or ``tiny`` (for fast tests).
      dataset: ``mnist``, ``fashion_mnist`` or ``synthetic``.
      batch_size: examples per training step.
      epochs: training epochs; also the ``epochs`` of the learning-rate decay.
      steps_per_epoch: cap on steps per epoch; None trains on the whole training set.
        With a cap, the tf.data input continues its shuffled stream into the next epoch
        (the NumPy and staged inputs start a fresh permutation each epoch).
      warmup_steps: steps after the first call that are recorded but excluded from statistics.
      eval_examples: test examples evaluated after each epoch; None means the whole test set,
        0 disables evaluation.
      seed: seeds weights, dropout, shuffling and synthetic data.
      learning_rate: Adam's initial learning rate.
      drop_remainder: drop the partial last batch of each epoch (the same batches for every
        mode; XLA would otherwise recompile for the odd shape).
    """

    model: str = "reference"
    dataset: str = "mnist"
    batch_size: int = 64
    epochs: int = 25
    steps_per_epoch: int | None = None
    warmup_steps: int = 10
    eval_examples: int | None = None
    seed: int = 0
    learning_rate: float = 1e-3
    drop_remainder: bool = True

    def __post_init__(self) -> None:
        _check_choice("model", self.model, MODELS)
        _check_choice("dataset", self.dataset, DATASETS)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("epochs", self.epochs, 1)
        _check_int("steps_per_epoch", self.steps_per_epoch, 1, optional=True)
        _check_int("warmup_steps", self.warmup_steps, 0)
        _check_int("eval_examples", self.eval_examples, 0, optional=True)
        _check_int("seed", self.seed, 0)
        lr = self.learning_rate
        number = isinstance(lr, (int, float)) and not isinstance(lr, bool)
        if not number or not math.isfinite(lr) or not lr > 0:
            raise ValueError(f"learning_rate={lr!r} must be a finite positive number")
        if not isinstance(self.drop_remainder, bool):
            raise ValueError(f"drop_remainder={self.drop_remainder!r} must be true or false")

    def full_batches(self, train_examples: int) -> int:
        """Full batches in one pass over ``train_examples`` training examples. With none,
        no training step can run (with ``drop_remainder`` there is no batch at all, and
        without it every batch would be a partial one)."""
        return train_examples // self.batch_size

    def steps_per_pass(self, train_examples: int) -> int:
        """Batches in one pass over ``train_examples``: the full ones, and the smaller
        last one unless ``drop_remainder``."""
        if self.drop_remainder:
            return self.full_batches(train_examples)
        return math.ceil(train_examples / self.batch_size)

    def steps_in_epoch(self, train_examples: int) -> int:
        """Steps an epoch trains: ``steps_per_epoch``, at most one pass."""
        full = self.steps_per_pass(train_examples)
        return min(full, self.steps_per_epoch or full)

    def check_train_size(self, train_examples: int) -> None:
        """Refuses a training set too small for one batch.

        Raises:
          ValueError: naming the batch size and the number of examples.
        """
        if not self.full_batches(train_examples):
            raise ValueError(
                f"the training set holds {train_examples} examples, fewer than one batch "
                f"of {self.batch_size}: no training step would run"
            )

    def replace(self, **changes: Any) -> Workload:
        """Returns a copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)
