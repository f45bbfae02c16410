"""The models: the reference VGG-style CNN and a tiny model for fast tests.

Models are built under whatever Keras mixed-precision policy is active; the final softmax is
always float32 so the loss is computed in full precision.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

INPUT_SHAPE = (28, 28, 1)


def _conv_block(filters: int, name: str) -> list[layers.Layer]:
    return [
        layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv"),
        layers.ReLU(name=f"{name}_relu"),
        layers.BatchNormalization(name=f"{name}_bn"),
    ]


def create_reference_model(num_classes: int = 10) -> keras.Model:
    """The reference CNN.

    Conv(16)-ReLU-BN-MaxPool; [Conv(32)-ReLU-BN] x2-MaxPool; [Conv(64)-ReLU-BN] x3-MaxPool;
    Flatten-Dense(256)-ReLU-BN-Dropout(0.5)-Dense(classes)-softmax. All convolutions are
    3x3 with ``same`` padding; 258,794 parameters for 10 classes.
    """
    stack: list[layers.Layer] = [keras.Input(INPUT_SHAPE, name="image")]
    stack += [*_conv_block(16, "b1_1"), layers.MaxPooling2D(name="b1_pool")]
    stack += _conv_block(32, "b2_1") + _conv_block(32, "b2_2")
    stack += [layers.MaxPooling2D(name="b2_pool")]
    for i in (1, 2, 3):
        stack += _conv_block(64, f"b3_{i}")
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
    return keras.Sequential(stack, name="reference_cnn")


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
    "tiny": create_tiny_model,
}


def create_model(name: str, num_classes: int = 10) -> keras.Model:
    """Builds the model called ``name`` (``reference`` or ``tiny``)."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"model={name!r} is not one of {', '.join(_FACTORIES)}") from None
    return factory(num_classes)
