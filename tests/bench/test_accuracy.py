"""One real epoch of the reference workload (slow: about a minute on two cores)."""

import pytest

from reports.load import load_records
from tests.bench.test_cli import FIXED, run_cli
from trainloop.datasets import DEBIAN_FASHION_MNIST


@pytest.mark.slow
@pytest.mark.skipif(
    not DEBIAN_FASHION_MNIST.is_dir(), reason="needs `apt-get install dataset-fashion-mnist`"
)
def test_one_epoch_of_fashion_mnist_reaches_85_percent(tmp_path):
    out = tmp_path / "out"
    result = run_cli(
        tmp_path,
        "run",
        *FIXED,
        "--dataset",
        "fashion_mnist",
        "--variants",
        "function",
        "--devices",
        "cpu",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "all",
        "--eval-examples",
        "all",
        "-o",
        str(out),
        timeout=1200,
    )
    assert result.returncode == 0, result.stderr
    (record,) = load_records([out])
    assert record.data_source["origin"] == "debian"
    assert record.cell["model"] == "reference" and record.cell["batch_size"] == 64
    epoch = record.epochs[0]
    assert epoch.train_examples == 937 * 64 and epoch.eval_examples == 10_000
    assert epoch.test_accuracy >= 0.85, f"test accuracy {epoch.test_accuracy:.4f}"
