"""Small hand-made run records with known answers."""

from __future__ import annotations

from reports.schema import EpochRecord, RunRecord, Steps

CELL = dict(
    mode="function",
    precision="float32",
    device="cpu",
    steps_per_call=1,
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
    **cell: object,
) -> RunRecord:
    """A run whose steps are ``first``, then ``warmup``, then ``timed`` (all in epoch 0)."""
    seconds = (first, *warmup, *timed)
    phases = ("first",) + ("warmup",) * len(warmup) + ("timed",) * len(timed)
    steps = Steps().extend(0, 0, phases, seconds, tuple(1.0 for _ in seconds))
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
        info={"first_step_s": first, "tracing_count_after_first": tracing[0]},
        fingerprint={"tensorflow": "2.21.0", "hostname": "h"},
    )
