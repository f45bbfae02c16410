"""Per-cell run settings: thread pools and environment variables of a cell's workers.

The variant says how the step executes inside TensorFlow; some choices that matter as
much are made outside it, before TensorFlow starts: its thread pools, and flags it reads
from the environment (oneDNN's ``TF_ENABLE_ONEDNN_OPTS``, XLA auto-clustering's
``TF_XLA_FLAGS``). :class:`RunSettings` carries them with the cell, so a matrix can hold
the same variant under different settings, each run's record says which it ran with, and
reports keep them apart. Workers with different environments are forked from different
zygotes (:class:`bench.matrix.launcher.Launcher` keys them by environment), because
TensorFlow reads some of these flags when it is imported.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Variables the harness sets for every worker itself; a cell cannot override them.
HARNESS_ENV = frozenset({"PYTHONPATH", "PYTHONUNBUFFERED", "CUDA_VISIBLE_DEVICES", "TF_CONFIG"})
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


@dataclass(frozen=True)
class RunSettings:
    """How a cell's worker process is set up beyond its variant: TensorFlow's thread pools
    and environment variables TensorFlow reads as it starts (``TF_ENABLE_ONEDNN_OPTS``,
    ``TF_XLA_FLAGS``, ...). Part of the cell: two cells differing only here are measured,
    stored and reported apart.

    Attributes:
      intra_op_threads, inter_op_threads: 0 keeps the run's options (TensorFlow's default
        unless ``--intra-op-threads``/``--inter-op-threads`` say otherwise).
      env: ``(NAME, VALUE)`` pairs set in the worker's environment, sorted by name.
    """

    intra_op_threads: int = 0
    inter_op_threads: int = 0
    env: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        for name in ("intra_op_threads", "inter_op_threads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name}={value!r} must be an integer >= 0 (0: the run's)")
        names = [name for name, _ in self.env]
        for name, value in self.env:
            if not _ENV_NAME.fullmatch(name) or name in HARNESS_ENV:
                raise ValueError(
                    f"environment variable {name!r} cannot be set per cell (upper-case "
                    f"names only, not {', '.join(sorted(HARNESS_ENV))})"
                )
            if not isinstance(value, str):
                raise ValueError(f"environment variable {name}={value!r} must be a string")
        if names != sorted(set(names)):
            raise ValueError(f"env={self.env!r} must name each variable once, sorted by name")

    @classmethod
    def create(
        cls, intra_op_threads: int = 0, inter_op_threads: int = 0, **env: str
    ) -> RunSettings:
        """Settings with ``env`` given as keyword arguments, in any order."""
        return cls(intra_op_threads, inter_op_threads, tuple(sorted(env.items())))

    @property
    def is_default(self) -> bool:
        """Whether the settings change nothing."""
        return self == RunSettings()

    def to_dict(self) -> dict[str, Any]:
        """The record's form: the fields that differ from the defaults."""
        doc: dict[str, Any] = {"env": dict(self.env)} if self.env else {}
        for name in ("intra_op_threads", "inter_op_threads"):
            if getattr(self, name):
                doc[name] = getattr(self, name)
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> RunSettings:
        """The inverse of :meth:`to_dict`.

        Raises:
          ValueError: an unknown field or a value the checks above reject.
        """
        unknown = set(doc) - {"env", "intra_op_threads", "inter_op_threads"}
        if unknown:
            raise ValueError(f"settings: unknown field(s) {', '.join(sorted(unknown))}")
        env = doc.get("env") or {}
        if not isinstance(env, Mapping):
            raise ValueError(f"settings.env={env!r} must map names to values")
        return cls.create(doc.get("intra_op_threads", 0), doc.get("inter_op_threads", 0), **env)
