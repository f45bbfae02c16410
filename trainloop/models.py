"""The models: the reference VGG-style CNN, the same CNN with fused BatchNorm kernels,
and a tiny model for fast tests.

Models are built under whatever Keras mixed-precision policy is active; the final softmax is
always float32 so the loss is computed in full precision.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import layers

INPUT_SHAPE = (28, 28, 1)


@keras.saving.register_keras_serializable(package="tapebench")
class FusedBatchNormalization(layers.BatchNormalization):
    """Keras BatchNormalization computed, in training on 4-D (NHWC) inputs, by TensorFlow's
    fused kernel (``FusedBatchNormV3``: statistics, normalisation and their gradient in one
    op each, which oneDNN accelerates) instead of Keras' separate moments, subtractions and
    multiplications. The same parameters, the same normalisation by the batch's (biased)
    statistics, and the same moving-average updates; inference uses Keras' own path.
    """

    def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        if not training or len(inputs.shape) != 4 or self.axis not in (-1, 3) or mask is not None:
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        y, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=inputs,
            scale=tf.cast(self.gamma, tf.float32),
            offset=tf.cast(self.beta, tf.float32),
            mean=tf.constant([], tf.float32),
            variance=tf.constant([], tf.float32),
            epsilon=self.epsilon,
            exponential_avg_factor=1.0,
            data_format="NHWC",
            is_training=True,
        )
        # The kernel returns the unbiased (n-1) variance; Keras averages the biased one.
        n = tf.cast(tf.reduce_prod(tf.shape(inputs)[:3]), tf.float32)
        biased = variance * (n - 1.0) / n
        m = self.momentum
        self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
        self.moving_variance.assign(self.moving_variance * m + biased * (1.0 - m))
        return y


def _conv_block(filters: int, name: str, norm: type[layers.Layer]) -> list[layers.Layer]:
    return [
        layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv"),
        layers.ReLU(name=f"{name}_relu"),
        norm(name=f"{name}_bn"),
    ]


def create_reference_model(num_classes: int = 10, fused: bool = False) -> keras.Model:
    """The reference CNN.

    Conv(16)-ReLU-BN-MaxPool; [Conv(32)-ReLU-BN] x2-MaxPool; [Conv(64)-ReLU-BN] x3-MaxPool;
    Flatten-Dense(256)-ReLU-BN-Dropout(0.5)-Dense(classes)-softmax. All convolutions are
    3x3 with ``same`` padding; 258,794 parameters for 10 classes. ``fused`` computes the
    convolutional BatchNorms with the fused kernel (:class:`FusedBatchNormalization`).
    """
    norm = FusedBatchNormalization if fused else layers.BatchNormalization
    stack: list[layers.Layer] = [keras.Input(INPUT_SHAPE, name="image")]
    stack += [*_conv_block(16, "b1_1", norm), layers.MaxPooling2D(name="b1_pool")]
    stack += _conv_block(32, "b2_1", norm) + _conv_block(32, "b2_2", norm)
    stack += [layers.MaxPooling2D(name="b2_pool")]
    for i in (1, 2, 3):
        stack += _conv_block(64, f"b3_{i}", norm)
    stack += [
        layers.MaxPooling2D(name="b3_pool"),
        layers.Flatten(name="flatten"),
        layers.Dense(256, name="fc"),
        layers.ReLU(name="fc_relu"),
        layers.BatchNormalization(name="fc_bn"),
        layers.Dropout(0.5, name="dropout"),
        layers.Dense(num_classes, name="logits"),
        layers.Activation("softmax", dtype="float32", name="softmax"),
    ]
    return keras.Sequential(stack, name="reference_cnn_fused" if fused else "reference_cnn")


def create_tiny_model(num_classes: int = 10) -> keras.Model:
    """A few-thousand-parameter CNN with the same layer kinds, for fast tests."""
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE, name="image"),
            layers.Conv2D(8, 3, padding="same", name="conv"),
            layers.ReLU(name="relu"),
            layers.BatchNormalization(name="bn"),
            layers.MaxPooling2D(4, name="pool"),
            layers.Flatten(name="flatten"),
            layers.Dense(num_classes, name="logits"),
            layers.Activation("softmax", dtype="float32", name="softmax"),
        ],
        name="tiny_cnn",
    )


_FACTORIES: dict[str, Callable[[int], keras.Model]] = {
    "reference": create_reference_model,
    "reference_fused": lambda classes: create_reference_model(classes, fused=True),
    "tiny": create_tiny_model,
}


def create_model(name: str, num_classes: int = 10) -> keras.Model:
    """Builds the model called ``name`` (``reference`` or ``tiny``)."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"model={name!r} is not one of {', '.join(_FACTORIES)}") from None
    return factory(num_classes)
