"""Throwaway git repositories of tapebench trees for the bisection's tests: this checkout's
committed files as the first commit, then commits that edit them."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from collections.abc import Callable, Mapping
from pathlib import Path

from tests.conftest import ROOT

STEP = "trainloop/step.py"
_APPLY = (
    "        optimizer.apply_gradients(zip(grads, variables, strict=True))\n        return loss\n"
)
# Extra work in every training step, folded into the loss so no graph optimisation can
# drop it: seven 784x784 matmuls on the batch, several times the tiny model's step on a
# CPU (each is about 1 GFLOP).
_EXTRA = (
    "        optimizer.apply_gradients(zip(grads, variables, strict=True))\n"
    "        flat = tf.reshape(tf.cast(images, tf.float32), [tf.shape(images)[0], -1])\n"
    "        work = tf.matmul(flat, flat, transpose_a=True) * 1e-3  # extra work\n"
    "        for _ in range(6):\n"
    "            work = tf.tanh(tf.matmul(work, work))\n"
    "        return loss + 1e-9 * tf.reduce_mean(work)\n"
)

Edit = Callable[[str], str]


def slow_step(text: str) -> str:
    """``trainloop/step.py`` with extra work in the train step."""
    if text.count(_APPLY) != 1:
        raise ValueError("the train step's end is not where the test expects it")
    return text.replace(_APPLY, _EXTRA)


_BROKEN = "\nthis line is not python\n"


def broken(text: str) -> str:
    """A source file that no longer imports."""
    return text + _BROKEN


def mended(text: str) -> str:
    """The file :func:`broken` broke, as it was."""
    return text.replace(_BROKEN, "")


def more_docs(text: str) -> str:
    """A documentation change."""
    return text + "\nOne more line of documentation.\n"


class TapebenchRepo:
    """A git repository whose first commit holds this checkout's committed tree."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.org",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.org",
        }
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", "HEAD"],
            capture_output=True,
            check=True,
        ).stdout
        path.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(path, filter="data")
        self.git("init", "-q", "-b", "main")
        self.good = self.commit("The tapebench tree", {})

    def git(self, *args: str) -> str:
        """Runs git in the repository; returns its output."""
        done = subprocess.run(
            ["git", "-C", str(self.path), *args],
            capture_output=True,
            text=True,
            env=self.env,
            check=True,
        )
        return done.stdout.strip()

    def commit(self, subject: str, edits: Mapping[str, Edit]) -> str:
        """Applies ``edits`` (file -> its new text from the old) and commits them all;
        returns the commit's hash."""
        for name, edit in edits.items():
            path = self.path / name
            path.write_text(edit(path.read_text()))
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", subject)
        return self.git("rev-parse", "HEAD")
