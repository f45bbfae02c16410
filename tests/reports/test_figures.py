"""The figures' data, on records with known times."""

from reports.figures import accuracy_time_curves
from reports.frames import Results
from reports.report import build_report
from tests.reports.factories import epochs_of, make_record


def test_accuracy_against_wall_time_puts_each_epoch_at_its_own_time():
    epochs = epochs_of((10.0, 10.0, 10.0), (1.0, 2.0, 3.0), (0.5, 0.8, 0.9))
    report = build_report(Results.from_records([make_record(epochs=epochs, eval_first=2.0)]))
    ((variant, curve),) = accuracy_time_curves(report, report.table)
    assert variant == "function/float32@cpu"
    assert list(curve["seconds"]) == [13.0, 25.0, 38.0]  # 2 + 11, + 12, + 13
    assert list(curve["accuracy"]) == [0.5, 0.8, 0.9]
