"""Installing where users are: the TensorFlow distribution chosen per platform, and a GPU
install path that never puts the CPU build beside the CUDA one."""

from __future__ import annotations

import tomllib

import pytest
from packaging.requirements import Requirement

from tests.conftest import ROOT

# TensorFlow 2.21 wheels for CPython 3.11 on PyPI, as `pip download --no-deps --platform P
# --python-version 3.11 --only-binary=:all:` found them (manylinux_2_27 for Linux).
# macOS x86-64 has none since 2.16, Windows on ARM none at all.
WHEELS = {
    "tensorflow-cpu": {("linux", "x86_64"), ("win32", "AMD64")},
    "tensorflow": {
        ("linux", "x86_64"),
        ("linux", "aarch64"),
        ("darwin", "arm64"),
        ("win32", "AMD64"),
    },
}
PLATFORMS = [
    ("linux", "x86_64"),
    ("linux", "aarch64"),
    ("darwin", "arm64"),
    ("darwin", "x86_64"),
    ("win32", "AMD64"),
    ("win32", "ARM64"),
]
TENSORFLOWS = {"tensorflow", "tensorflow-cpu"}


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _dependencies() -> list[Requirement]:
    return [Requirement(line) for line in _project()["dependencies"]]


def _chosen(platform: tuple[str, str]) -> list[str]:
    system, machine = platform
    env = {"sys_platform": system, "platform_machine": machine}
    return [
        r.name
        for r in _dependencies()
        if r.name in TENSORFLOWS and (r.marker is None or r.marker.evaluate(env))
    ]


@pytest.mark.parametrize("platform", PLATFORMS, ids="-".join)
def test_exactly_one_tensorflow_and_one_that_has_a_wheel(platform):
    chosen = _chosen(platform)
    assert len(chosen) == 1, chosen
    if any(platform in wheels for wheels in WHEELS.values()):
        assert platform in WHEELS[chosen[0]], f"{chosen[0]} has no 2.21 wheel for {platform}"


def test_the_cpu_build_where_it_exists():
    # Its wheel is half the size of the CUDA-capable Linux one, and it is what the
    # project's figures were measured with.
    assert _chosen(("linux", "x86_64")) == ["tensorflow-cpu"]
    assert _chosen(("win32", "AMD64")) == ["tensorflow-cpu"]


def _requirement_lines(text: str) -> list[Requirement]:
    lines = (line.split("#")[0].strip() for line in text.splitlines())
    return [Requirement(line) for line in lines if line]


def test_the_gpu_requirements_are_the_projects_with_the_cuda_build():
    gpu = _requirement_lines((ROOT / "requirements-gpu.txt").read_text())
    tensorflow = [r for r in gpu if r.name in TENSORFLOWS]
    assert [(r.name, r.extras) for r in tensorflow] == [("tensorflow", {"and-cuda"})]
    default_specs = {str(r.specifier) for r in _dependencies() if r.name in TENSORFLOWS}
    assert default_specs == {str(tensorflow[0].specifier)}  # the same release
    others = [r for r in _dependencies() if r.name not in TENSORFLOWS]
    profile = [Requirement(line) for line in _project()["optional-dependencies"]["profile"]]
    assert sorted(map(str, others + profile)) == sorted(
        str(r) for r in gpu if r.name not in TENSORFLOWS
    )
