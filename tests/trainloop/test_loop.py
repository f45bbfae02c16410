"""The timed loop: phases, partial batches, retracing, evaluation, divergence."""

import numpy as np
import pytest

from tests.conftest import learnable_arrays
from tests.trainloop.test_step import Recorder, train
from trainloop.config import Variant, Workload
from trainloop.datasets import synthetic_arrays
from trainloop.devices import DeviceUnavailableError, visible_devices
from trainloop.loop import DivergedError, TrainingLoop


def test_phases_first_warmup_timed_and_steps_numbered_across_epochs(learnable):
    rec = train(learnable, epochs=2, steps_per_epoch=6, warmup_steps=3)
    # Every later epoch's first call is phase epoch_first, like the run's first is first.
    assert (
        rec.phases == ["first"] + ["warmup"] * 3 + ["timed"] * 2 + ["epoch_first"] + ["timed"] * 5
    )
    assert [(c.epoch, c.first_step, len(c.seconds)) for c in rec.chunks] == [(0, 0, 6), (1, 6, 6)]
    assert rec.info.first_step_s == rec.chunks[0].seconds[0]
    assert all(s > 0 for c in rec.chunks for s in c.seconds)
    assert rec.info.sync_method in ("fetch+sync_devices", "fetch")


def test_epoch_time_covers_its_preparation_and_its_steps(learnable):
    rec = train(learnable, epochs=2, steps_per_epoch=8)
    first, second = (sum(c.seconds) for c in rec.chunks)
    # Epoch 0 also starts the input stream's iterator (its preparation, in no step); the
    # stream's later epochs need no preparation.
    assert rec.epochs[0].train_seconds > first
    assert rec.epochs[1].train_seconds == pytest.approx(second, abs=1e-3)
    assert [e.train_examples for e in rec.epochs] == [8 * 32, 8 * 32]


@pytest.mark.parametrize("mode", ["function", "xla"])
def test_partial_last_batch_is_flagged_and_does_not_retrace(mode):
    data = learnable_arrays(n_train=100, n_test=40)  # 100 = 3 * 32 + 4
    rec = train(
        data,
        mode,
        epochs=2,
        steps_per_epoch=None,
        warmup_steps=1,
        drop_remainder=False,
        eval_examples=40,
    )
    assert rec.phases == [
        "first",
        "warmup",
        "timed",
        "partial",
        "epoch_first",
        "timed",
        "timed",
        "partial",
    ]
    assert rec.info.tracing_count_after_first == 1
    assert [e.tracing_count for e in rec.epochs] == [1, 1]
    assert rec.epochs[0].train_examples == 100


def test_dropping_the_remainder_keeps_every_batch_full():
    data = learnable_arrays(n_train=100, n_test=40)
    rec = train(data, epochs=1, steps_per_epoch=None, warmup_steps=0)
    assert rec.phases == ["first", "timed", "timed"]
    assert rec.epochs[0].train_examples == 96


def test_evaluation_is_timed_and_scored(learnable):
    # BatchNorm's moving statistics need ~100 steps before inference accuracy means much.
    rec = train(learnable, epochs=6, steps_per_epoch=16, eval_examples=100, learning_rate=3e-3)
    last = rec.epochs[-1]
    assert last.eval_examples == 100 and last.eval_seconds > 0
    assert 0.0 <= last.test_accuracy <= 1.0 and np.isfinite(last.test_loss)
    assert last.test_accuracy > 0.3  # well above chance (0.1) after 96 steps (seen: 0.53)
    assert rec.info.eval_first_call_s > 0


def test_synthetic_data_has_no_accuracy():
    rec = train(synthetic_arrays(0, (256, 64)), eval_examples=64, steps_per_epoch=2)
    assert rec.epochs[0].test_accuracy is None
    assert rec.epochs[0].test_loss is not None


def test_no_evaluation(learnable):
    rec = train(learnable, eval_examples=0, steps_per_epoch=2)
    assert rec.epochs[0].eval_seconds is None and rec.epochs[0].eval_examples == 0


def test_an_absurd_learning_rate_diverges_and_keeps_the_steps(learnable):
    rec = Recorder()
    loop = TrainingLoop(
        Variant("function"),
        Workload(model="tiny", batch_size=32, epochs=3, learning_rate=1e30, eval_examples=0),
        learnable,
    )
    with pytest.raises(DivergedError, match="loss became nan"):
        loop.run(rec)
    assert rec.chunks, "the steps before the divergence must be reported"
    assert not np.isfinite(rec.chunks[-1].losses[-1])


@pytest.mark.skipif(bool(visible_devices("gpu")), reason="a GPU is visible")
def test_gpu_variant_without_gpu_is_refused(learnable):
    loop = TrainingLoop(Variant("function", device="gpu"), Workload(model="tiny"), learnable)
    with pytest.raises(DeviceUnavailableError, match="no GPU visible"):
        loop.run(Recorder())


@pytest.mark.gpu
@pytest.mark.skipif(not visible_devices("gpu"), reason="needs a visible GPU")
@pytest.mark.parametrize("precision", ["float32", "mixed_float16"])
def test_gpu_variant_trains_on_the_gpu(learnable, precision):
    rec = Recorder()
    TrainingLoop(
        Variant("function", precision, device="gpu"),
        Workload(model="tiny", batch_size=32, epochs=1, steps_per_epoch=4, eval_examples=32),
        learnable,
    ).run(rec)
    assert rec.info.device == "/GPU:0"
    assert np.isfinite(rec.losses).all()


def test_steps_per_call_runs_an_in_graph_loop_without_retracing(learnable):
    rec = Recorder()
    variant = Variant.parse("function:5")
    TrainingLoop(
        variant,
        Workload(
            model="tiny",
            batch_size=32,
            epochs=2,
            steps_per_epoch=12,
            warmup_steps=6,
            eval_examples=0,
        ),
        learnable,
    ).run(rec)
    # 12 steps per epoch in calls of 5, 5 and 2 (the step count is a tensor: no retrace)
    assert [len(c.seconds) for c in rec.chunks] == [3, 3]
    assert [c.steps_per_sample for c in rec.chunks] == [5, 5]
    assert rec.phases == ["first", "warmup", "timed", "epoch_first", "timed", "timed"]
    assert [e.tracing_count for e in rec.epochs] == [1, 1]
    assert rec.epochs[0].train_examples == 12 * 32
    assert np.isfinite(rec.losses).all()
    # The batches are read inside the compiled call: no separate input time to report.
    assert all(s is None for c in rec.chunks for s in c.input_seconds)


@pytest.mark.parametrize(
    "spec",
    [
        "function+numpy",
        "function+staged",
        "eager+staged",
        "xla+staged",
        "fit",
        "fit:4",
        "function:4",
    ],
)
def test_other_feeds_and_fit_train_the_same_model(learnable, spec):
    rec = Recorder()
    TrainingLoop(
        Variant.parse(spec),
        Workload(
            model="tiny",
            batch_size=32,
            epochs=2,
            steps_per_epoch=16,
            warmup_steps=2,
            eval_examples=64,
            learning_rate=3e-3,
        ),
        learnable,
    ).run(rec)
    losses = rec.losses
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    assert rec.epochs[-1].test_accuracy is not None and rec.epochs[-1].rss_bytes > 0
    if spec.startswith("fit"):
        assert rec.info.extra["fit_steps_per_execution"] == Variant.parse(spec).steps_per_call
        assert "fit_jit_compile" in rec.info.extra
    elif Variant.parse(spec).steps_per_call > 1:  # batches read inside the compiled call
        assert all(x is None for c in rec.chunks for x in c.input_seconds)
    else:
        inputs = [x for c in rec.chunks for x in c.input_seconds]
        assert all(x is not None and x >= 0 for x in inputs)


def test_unsupported_combinations_are_refused_by_the_loop(learnable):
    with pytest.raises(ValueError, match="eager runs one step per Python call"):
        TrainingLoop(Variant.parse("eager:3"), Workload(model="tiny"), learnable)


def test_an_injected_delay_slows_every_step(learnable):
    plain = train(learnable, steps_per_epoch=8)
    slowed = Recorder()
    TrainingLoop(
        Variant("function"),
        Workload(
            model="tiny",
            batch_size=32,
            epochs=1,
            steps_per_epoch=8,
            warmup_steps=2,
            eval_examples=0,
        ),
        learnable,
        inject_delay_s=0.05,
    ).run(slowed)
    assert slowed.info.injected_delay_s == 0.05
    # Every interval contains the busy wait, so no step can be shorter than it.
    assert min(s for c in slowed.chunks for s in c.seconds) >= 0.05
    assert plain.info.injected_delay_s == 0.0


def test_the_training_stream_reshuffles_each_pass_and_feeds_keep_one_iterator():
    from trainloop import inputs
    from trainloop.feeds import DatasetFeed

    data = synthetic_arrays(0, sizes=(96, 8))
    dataset = inputs.create_train_dataset(data, 32, seed=0, drop_remainder=True)
    feed = DatasetFeed(session=None, dataset=dataset)  # type: ignore[arg-type]
    passes = []
    for epoch in range(2):
        feed.start_epoch(epoch)
        if epoch == 0:
            first_iterator = feed.iterator
        batches = [feed.fetch(i, 1)[0].numpy() for i in range(3)]
        passes.append(np.concatenate(batches).reshape(96, -1))
    # Every epoch is one full pass over the 96 examples, in a fresh order ...
    for images in passes:
        assert len({row.tobytes() for row in images}) == 96
    assert {r.tobytes() for r in passes[0]} == {r.tobytes() for r in passes[1]}
    assert not np.array_equal(passes[0], passes[1])
    # ... read through the same iterator (a fresh one per epoch would destroy the old
    # one mid-pass when epochs are capped, which can stall for seconds).
    assert feed.iterator is first_iterator


@pytest.mark.parametrize("steps_per_epoch, keeps_partial", [(2, False), (None, True)])
def test_the_stream_keeps_the_partial_batch_only_where_an_epoch_ends_with_it(
    monkeypatch, steps_per_epoch, keeps_partial
):
    # 100 examples = 3 batches of 32 + 4. Epochs capped at 2 steps read through the end of
    # the first pass during the second epoch, where a kept partial batch would be timed as
    # a full step; full epochs end exactly with it.
    from trainloop import loop as loop_module

    seen = []
    real = loop_module.inputs.create_train_dataset

    def spy(data, batch_size, seed, drop_remainder):
        seen.append(drop_remainder)
        return real(data, batch_size, seed, drop_remainder)

    monkeypatch.setattr(loop_module.inputs, "create_train_dataset", spy)
    rec = train(
        learnable_arrays(n_train=100, n_test=40),
        epochs=3,
        steps_per_epoch=steps_per_epoch,
        warmup_steps=1,
        drop_remainder=False,
        eval_examples=0,
    )
    assert seen == [not keeps_partial]
    assert ("partial" in rec.phases) == keeps_partial


def test_the_profiler_counts_the_step_after_training(learnable):
    """The graph profiler's count needs a trace of its own, so it comes after the run
    rather than before the first call. It counts every op, the analytic count only conv
    and dense layers (on the tiny model, half the work; on the reference CNN, 98%)."""
    loop = TrainingLoop(
        Variant("function"),
        Workload(model="tiny", epochs=1, steps_per_epoch=3, warmup_steps=1, eval_examples=0),
        learnable,
    )
    with pytest.raises(RuntimeError, match="finished run"):
        loop.profiler_flops()
    rec = Recorder()
    loop.run(rec)
    assert rec.info.ready_at is not None and rec.info.flops_per_step_profiler is None
    counted = loop.profiler_flops()
    assert rec.info.flops_per_step <= counted <= 3 * rec.info.flops_per_step
