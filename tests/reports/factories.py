"""Small hand-made run records with known answers."""

from __future__ import annotations

from reports.schema import EpochRecord, RunRecord, Steps

CELL = dict(
    mode="function",
    precision="float32",
    device="cpu",
    steps_per_call=1,
    input_mode="tfdata",
    strategy="none",
    replicas=1,
    model="tiny",
    dataset="synthetic",
    batch_size=10,
    epochs=1,
    steps_per_epoch=None,
    warmup_steps=1,
    eval_examples=None,
    seed=0,
    learning_rate=1e-3,
    drop_remainder=True,
)


def epochs_of(
    train: tuple[float, ...], evals: tuple[float, ...], accuracy: tuple[float | None, ...]
) -> tuple[EpochRecord, ...]:
    """Epoch records with the given train/eval seconds and test accuracies."""
    return tuple(
        EpochRecord(
            epoch=i,
            train_seconds=t,
            train_examples=100,
            train_loss=1.0,
            samples_per_second=100 / t,
            eval_seconds=e,
            eval_examples=10,
            test_loss=1.0,
            test_accuracy=a,
            tracing_count=1,
        )
        for i, (t, e, a) in enumerate(zip(train, evals, accuracy, strict=True))
    )


def make_record(
    run_id: str = "r0",
    timed: tuple[float, ...] = (0.1, 0.2, 0.3),
    first: float = 5.0,
    warmup: tuple[float, ...] = (1.0,),
    status: str = "ok",
    accuracy: float | None = 0.5,
    repeat: int = 0,
    reason: str | None = None,
    tracing: tuple[int | None, int | None] = (1, 1),
    fingerprint: dict | None = None,
    epochs: tuple[EpochRecord, ...] | None = None,
    eval_first: float | None = None,
    **cell: object,
) -> RunRecord:
    """A run whose samples are ``first``, then ``warmup``, then ``timed`` (all in epoch 0,
    one call of ``steps_per_call`` steps each); by default one epoch covering them, with
    test accuracy ``accuracy``."""
    seconds = (first, *warmup, *timed)
    phases = ("first",) + ("warmup",) * len(warmup) + ("timed",) * len(timed)
    stride = int(cell.get("steps_per_call", 1))  # type: ignore[call-overload]
    steps = Steps().extend(0, 0, phases, seconds, tuple(1.0 for _ in seconds), stride=stride)
    if epochs is None:
        epochs = (
            EpochRecord(
                epoch=0,
                train_seconds=sum(seconds),
                train_examples=10 * len(seconds),
                train_loss=1.0,
                samples_per_second=10 * len(seconds) / sum(seconds),
                eval_seconds=0.5,
                eval_examples=100,
                test_loss=1.0,
                test_accuracy=accuracy,
                tracing_count=tracing[1],
            ),
        )
    if status == "skipped":
        steps, epochs = Steps(), ()
    return RunRecord(
        run_id=run_id,
        invocation_id="inv",
        cell={**CELL, **cell},
        repeat=repeat,
        status=status,
        reason=reason,
        steps=steps,
        epochs=epochs,
        info={
            "first_step_s": first,
            "tracing_count_after_first": tracing[0],
            "eval_first_call_s": eval_first,
        },
        fingerprint=fingerprint or {"tensorflow": "2.21.0", "hostname": "h"},
        peak_rss_bytes=2**30,
        log_file=f"logs/{run_id}.log",
    )
