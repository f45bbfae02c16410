"""The shared training step under every precision; losses across execution modes."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from trainloop import inputs
from trainloop.config import PRECISIONS, Variant, Workload
from trainloop.loop import TrainingLoop
from trainloop.models import create_model
from trainloop.session import open_session
from trainloop.step import (
    create_device_sync,
    create_optimizer,
    create_train_step,
    precision_policy,
    tracing_count,
    wrap_step,
)


class Recorder:
    """Keeps what the loop reports."""

    def __init__(self):
        self.info, self.chunks, self.epochs, self.progress_calls = None, [], [], 0

    def loop_begin(self, info):
        self.info = info

    def progress(self, epoch, step, steps):
        self.progress_calls += 1

    def steps_end(self, chunk):
        self.chunks.append(chunk)

    def epoch_end(self, result):
        self.epochs.append(result)

    @property
    def losses(self):
        return np.array([x for c in self.chunks for x in c.losses])

    @property
    def phases(self):
        return [p for c in self.chunks for p in c.phases]


def train(data, mode="function", precision="float32", **workload):
    settings = dict(
        model="tiny", epochs=1, steps_per_epoch=10, warmup_steps=2, eval_examples=0, batch_size=32
    )
    settings.update(workload)
    recorder = Recorder()
    TrainingLoop(Variant(mode, precision), Workload(**settings), data).run(recorder)
    return recorder


def test_policy_is_restored_even_after_an_error():
    before = keras.mixed_precision.global_policy().name
    with pytest.raises(RuntimeError), precision_policy("mixed_float16"):
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
        raise RuntimeError("boom")
    assert keras.mixed_precision.global_policy().name == before


@pytest.mark.parametrize(
    "precision, compute",
    [("float32", "float32"), ("mixed_bfloat16", "bfloat16"), ("mixed_float16", "float16")],
)
def test_mixed_policies_give_expected_dtypes_and_finite_losses(learnable, precision, compute):
    rec = train(learnable, precision=precision, steps_per_epoch=5)
    assert rec.info.policy == precision
    assert (rec.info.compute_dtype, rec.info.variable_dtype) == (compute, "float32")
    assert np.isfinite(rec.losses).all()
    assert keras.mixed_precision.global_policy().name == "float32"


def test_mixed_float16_uses_loss_scaling():
    with precision_policy("mixed_float16"):
        opt = create_optimizer(1e-3, 25, "mixed_float16")
    assert isinstance(opt, keras.mixed_precision.LossScaleOptimizer)
    assert not isinstance(
        create_optimizer(1e-3, 25, "mixed_bfloat16"), keras.mixed_precision.LossScaleOptimizer
    )


def test_learning_rate_decays_per_step_like_keras2_decay():
    opt = create_optimizer(1e-3, 25, "float32")
    for step in (0, 1, 937, 23_425):
        opt.iterations.assign(step)
        expected = 1e-3 / (1 + (1e-3 / 25) * step)
        assert float(opt.learning_rate) == pytest.approx(expected, rel=1e-6)


def test_function_and_xla_trace_once_per_signature():
    model = create_model("tiny")
    opt = create_optimizer(1e-3, 1, "float32")
    opt.build(model.trainable_variables)
    fn = create_train_step(model, keras.losses.CategoricalCrossentropy(reduction=None), opt)
    sig = inputs.input_signature(10)
    x, y = tf.zeros([8, 28, 28, 1]), tf.one_hot(tf.zeros([8], tf.int32), 10)
    for mode in ("function", "xla"):
        step = wrap_step(fn, mode, sig)
        step(x, y)
        step(x[:5], y[:5])  # a partial batch
        assert tracing_count(step) == 1
    assert tracing_count(wrap_step(fn, "eager", sig)) is None


def test_eager_and_function_losses_agree_without_dropout(learnable):
    # The tiny model has no dropout, so both modes run the same arithmetic; graph
    # rewrites may reassociate float32 sums (observed <= 1.5e-7 relative over 20 steps,
    # about one ulp). 1e-5 leaves headroom yet catches any real difference in the step,
    # which shows up at 1e-3 or more.
    eager = train(learnable, "eager").losses
    function = train(learnable, "function").losses
    np.testing.assert_allclose(function, eager, rtol=1e-5)


def test_xla_losses_agree_with_eager_on_the_tiny_model(learnable):
    # XLA fuses and reorders float32 arithmetic (observed <= 2e-5 relative over 20 steps).
    np.testing.assert_allclose(
        train(learnable, "xla").losses, train(learnable, "eager").losses, rtol=2e-4
    )


def test_eager_and_function_agree_on_the_reference_model(learnable):
    # Step 0 sees identical weights, batch and dropout mask in both modes, so its loss may
    # differ only by float32 rounding from fused kernels (observed: 0). After that, Adam
    # turns rounding differences in near-zero gradients into learning-rate-sized weight
    # differences (m / sqrt(v) normalises their size away), so the losses drift: observed
    # up to 7e-4 relative by step 5 over three seeds, ~1e-2 by step 20. A different dropout
    # mask -- what XLA's separate RNG stream gives -- moves even step 0 by ~10%, so 5e-3
    # over five steps still tells "same step, rounding drift" from "different step".
    kw = dict(model="reference", steps_per_epoch=5, warmup_steps=0)
    function = train(learnable, "function", **kw).losses
    eager = train(learnable, "eager", **kw).losses
    np.testing.assert_allclose(function[0], eager[0], rtol=1e-6)
    np.testing.assert_allclose(function, eager, rtol=5e-3)


@pytest.mark.parametrize("mode", ["eager", "function", "xla"])
@pytest.mark.parametrize("precision", PRECISIONS)
def test_every_variant_lowers_the_loss(learnable, mode, precision):
    # 32 steps on a learnable task: float32 goes from ~2.8 to ~0.2 (mean of 4 steps).
    losses = train(
        learnable, mode, precision, epochs=2, steps_per_epoch=16, learning_rate=3e-3
    ).losses
    assert np.isfinite(losses).all()
    assert losses[-4:].mean() < 0.5 * losses[:4].mean()


def _applied_gradients(optimizer, variables):
    """The gradients Adam applied in its first step: its first moments start at zero and
    become (1 - beta_1) * gradient."""
    slots = {v.path.split("/", 1)[1]: v for v in optimizer.variables}
    beta_1 = optimizer.beta_1
    return [
        np.asarray(slots[v.path.replace("/", "_") + "_momentum"]) / (1 - beta_1) for v in variables
    ]


@pytest.mark.parametrize("mode", ["eager", "function"])
def test_mixed_float16_scales_the_loss_in_the_tape_and_applies_unscaled_gradients(learnable, mode):
    # Adam is invariant to a constant factor on its gradients, so a loss that goes down
    # cannot show a scaling bug. Instead, after one step from the same weights as a float32
    # copy of the model: the gradients apply_gradients received must be the loss scale times
    # the float32 gradient (the tape saw the scaled loss), and the gradients Adam applied
    # must be the float32 gradient itself (unscaled once). Dropping scale_loss, or applying
    # it twice, moves one or the other by a factor of 2**15.
    x, y = (
        tf.constant(a)
        for a in inputs.to_model_arrays(learnable.x_train[:32], learnable.y_train[:32], 10)
    )
    loss_fn = keras.losses.CategoricalCrossentropy(reduction=None)
    keras.utils.set_random_seed(0)
    with precision_policy("mixed_float16"):
        model = create_model("tiny")
        optimizer = create_optimizer(1e-3, 1, "mixed_float16")
        optimizer.build(model.trainable_variables)
    reference = create_model("tiny")
    reference.set_weights(model.get_weights())
    with tf.GradientTape() as tape:
        loss = tf.nn.compute_average_loss(loss_fn(y, reference(x, training=True)))
    expected = [np.asarray(g) for g in tape.gradient(loss, reference.trainable_variables)]

    received = [tf.Variable(tf.zeros_like(v)) for v in model.trainable_variables]
    apply_gradients = optimizer.apply_gradients

    def spy(grads_and_vars):
        pairs = list(grads_and_vars)
        for slot, (grad, _) in zip(received, pairs, strict=True):
            slot.assign(grad)
        return apply_gradients(pairs)

    optimizer.apply_gradients = spy
    scale = float(optimizer.dynamic_scale)
    with precision_policy("mixed_float16"):
        step = wrap_step(
            create_train_step(model, loss_fn, optimizer), mode, inputs.input_signature(10)
        )
        step(x, y)
    assert scale == 2.0**15 and int(optimizer.iterations) == 1  # a finite step, applied
    applied = _applied_gradients(optimizer.inner_optimizer, model.trainable_variables)
    for want, sent, got in zip(expected, received, applied, strict=True):
        # float16 arithmetic: a few parts in a thousand, relative to the largest entry
        atol = 0.02 * np.abs(want).max()
        np.testing.assert_allclose(np.asarray(sent) / scale, want, rtol=0.02, atol=atol)
        np.testing.assert_allclose(got, want, rtol=0.02, atol=atol)


@pytest.mark.parametrize("partial, batch", [(False, 32), (True, None)])
def test_the_train_step_is_traced_for_the_batch_size_unless_a_partial_batch_comes(partial, batch):
    # An unknown batch dimension costs a compiled step a few percent; it is only needed
    # where a smaller last batch reaches the step (and must not retrace it).
    workload = Workload(model="tiny", batch_size=32)
    with open_session(Variant("function"), workload, partial_batches=partial) as s:
        assert [spec.shape[0] for spec in s.train_step.input_signature] == [batch, batch]
        assert s.batch_dim == batch


def test_the_step_trains_in_training_mode(learnable):
    # The classic tutorial called model(X): inference mode under tf.keras 2, BatchNorm on
    # its (never updated) moving statistics. The step runs training=True: batch statistics,
    # moving averages updated.
    model = create_model("tiny")
    optimizer = create_optimizer(1e-3, 1, "float32")
    optimizer.build(model.trainable_variables)
    step = create_train_step(model, keras.losses.CategoricalCrossentropy(reduction=None), optimizer)
    x, y = inputs.to_model_arrays(learnable.x_train[:32], learnable.y_train[:32], 10)
    bn = model.get_layer("bn")
    before = np.asarray(bn.moving_mean).copy()
    step(tf.constant(x), tf.constant(y))
    assert not np.allclose(np.asarray(bn.moving_mean), before)


def test_the_step_ends_with_a_device_sync_where_devices_run_asynchronously():
    # On the CPU with synchronous execution a call returns once its ops have run: the
    # fetch of the loss is the sync. Elsewhere sync_devices waits for queued work.
    assert create_device_sync("cpu")[1] == "fetch"
    assert create_device_sync("gpu")[1] == "fetch+sync_devices"
    tf.config.experimental.set_synchronous_execution(False)
    try:
        assert create_device_sync("cpu")[1] == "fetch+sync_devices"
    finally:
        tf.config.experimental.set_synchronous_execution(True)
