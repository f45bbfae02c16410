import keras
import numpy as np
import pytest

from trainloop.models import create_model
from trainloop.step import precision_policy

REFERENCE_LAYERS = [
    ("Conv2D", 16),
    ("ReLU", None),
    ("BatchNormalization", None),
    ("MaxPooling2D", None),
    ("Conv2D", 32),
    ("ReLU", None),
    ("BatchNormalization", None),
    ("Conv2D", 32),
    ("ReLU", None),
    ("BatchNormalization", None),
    ("MaxPooling2D", None),
    ("Conv2D", 64),
    ("ReLU", None),
    ("BatchNormalization", None),
    ("Conv2D", 64),
    ("ReLU", None),
    ("BatchNormalization", None),
    ("Conv2D", 64),
    ("ReLU", None),
    ("BatchNormalization", None),
    ("MaxPooling2D", None),
    ("Flatten", None),
    ("Dense", 256),
    ("ReLU", None),
    ("BatchNormalization", None),
    ("Dropout", None),
    ("Dense", 10),
    ("Activation", None),
]


def _units(layer):
    return getattr(layer, "filters", None) or getattr(layer, "units", None)


def test_reference_model_layer_for_layer():
    model = create_model("reference")
    assert [(type(x).__name__, _units(x)) for x in model.layers] == REFERENCE_LAYERS
    convs = [x for x in model.layers if isinstance(x, keras.layers.Conv2D)]
    assert all(c.kernel_size == (3, 3) and c.padding == "same" for c in convs)
    assert model.get_layer("dropout").rate == 0.5
    assert model.get_layer("softmax").activation.__name__ == "softmax"
    assert model.input_shape == (None, 28, 28, 1)
    assert model.output_shape == (None, 10)


def test_reference_parameter_count():
    # Counted by hand per layer: conv 3*3*cin*cout + cout, BN 4*c, dense in*out + out.
    by_hand = (
        (160 + 64)
        + (4640 + 128)
        + (9248 + 128)
        + (18496 + 256)
        + 2 * (36928 + 256)
        + (147712 + 1024)
        + 2570
    )
    assert by_hand == 258_794
    assert create_model("reference").count_params() == by_hand


@pytest.mark.parametrize(
    "policy, compute", [("mixed_bfloat16", "bfloat16"), ("mixed_float16", "float16")]
)
def test_softmax_stays_float32_under_mixed_precision(policy, compute):
    with precision_policy(policy):
        model = create_model("reference")
    assert model.get_layer("b1_1_conv").compute_dtype == compute
    assert model.get_layer("b1_1_conv").variable_dtype == "float32"
    assert model.get_layer("softmax").compute_dtype == "float32"
    assert model(np.zeros((2, 28, 28, 1), np.float32)).dtype == "float32"


def test_tiny_model_is_small_and_shaped_alike():
    model = create_model("tiny", num_classes=7)
    assert model.count_params() < 10_000
    assert model.output_shape == (None, 7)


def test_unknown_model_name():
    with pytest.raises(
        ValueError, match="model='vgg' is not one of reference, reference_fused, tiny"
    ):
        create_model("vgg")


def test_analytic_flops_of_the_reference_step():
    from trainloop.flops import analytic_flops_per_step

    # Forward multiply-adds per image, conv: H*W*Cout*9*Cin; dense: in*out.
    macs = (
        28 * 28 * 16 * 9 * 1
        + 14 * 14 * 32 * 9 * 16
        + 14 * 14 * 32 * 9 * 32
        + 7 * 7 * 64 * 9 * 32
        + 2 * 7 * 7 * 64 * 9 * 64
        + 576 * 256
        + 256 * 10
    )
    assert macs == 7_488_256
    # forward 2*macs, backward twice that, minus the first layer's input gradient
    expected = 64 * (3 * 2 * macs - 2 * 28 * 28 * 16 * 9)
    assert expected == 2_861_039_616
    assert analytic_flops_per_step(create_model("reference"), 64) == expected


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_fused_batchnorm_computes_what_keras_batchnorm_computes(policy):
    import tensorflow as tf

    from trainloop.models import FusedBatchNormalization

    x = tf.random.stateless_normal([8, 5, 5, 3], seed=[1, 2]) * 3 + 1
    with precision_policy(policy):
        plain, fused = keras.layers.BatchNormalization(), FusedBatchNormalization()
        plain.build(x.shape)
        fused.build(x.shape)
    for layer in (plain, fused):  # same non-trivial parameters in both
        layer.gamma.assign([0.5, 1.0, 2.0])
        layer.beta.assign([0.1, -0.2, 0.3])
    xc = tf.cast(x, plain.compute_dtype)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(xc)
        a, b = plain(xc, training=True), fused(xc, training=True)
        loss_a, loss_b = (
            tf.reduce_sum(tf.cast(a, tf.float32) ** 2),
            tf.reduce_sum(tf.cast(b, tf.float32) ** 2),
        )
    tol = 1e-5 if policy == "float32" else 2e-2
    np.testing.assert_allclose(tf.cast(b, tf.float32), tf.cast(a, tf.float32), rtol=tol, atol=tol)
    np.testing.assert_allclose(fused.moving_mean, plain.moving_mean, rtol=1e-5)
    np.testing.assert_allclose(fused.moving_variance, plain.moving_variance, rtol=1e-5)
    np.testing.assert_allclose(
        tf.cast(tape.gradient(loss_b, xc), tf.float32),
        tf.cast(tape.gradient(loss_a, xc), tf.float32),
        rtol=10 * tol,
        atol=10 * tol,
    )
    np.testing.assert_allclose(
        tf.cast(fused(xc, training=False), tf.float32),
        tf.cast(plain(xc, training=False), tf.float32),
        rtol=tol,
        atol=tol,
    )


def test_the_fused_reference_model_is_the_same_model():
    plain, fused = create_model("reference"), create_model("reference_fused")
    assert fused.count_params() == plain.count_params() == 258_794
    assert [type(x).__name__.replace("Fused", "") for x in fused.layers] == [
        type(x).__name__ for x in plain.layers
    ]
