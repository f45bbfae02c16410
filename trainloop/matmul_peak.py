"""The machine's measured peak: a matrix-multiplication microbenchmark per precision.

Large square matmuls are the friendliest work a CPU or GPU gets (oneDNN/cuBLAS at their
best), so their rate is a practical ceiling against which a training step's achieved
FLOP/s is judged.
"""

from __future__ import annotations

import time

import tensorflow as tf

from trainloop.devices import device_scope

PRECISION_DTYPES = {
    "float32": tf.float32,
    "mixed_bfloat16": tf.bfloat16,
    "mixed_float16": tf.float16,
}


def matmul_peak_flops(
    precision: str, device: str = "cpu", n: int = 2048, seconds: float = 1.5, repeats: int = 3
) -> float:
    """The best FLOP/s of ``n`` x ``n`` matmuls in ``precision``'s compute dtype, over
    ``repeats`` bursts of ``seconds / repeats`` each (every burst ends with a sync)."""
    dtype = PRECISION_DTYPES[precision]
    with device_scope(device):
        a = tf.cast(tf.random.uniform([n, n], seed=1), dtype)
        b = tf.cast(tf.random.uniform([n, n], seed=2), dtype)
        matmul = tf.function(tf.linalg.matmul)
        float(matmul(a, b)[0, 0])  # trace and warm up
        best = 0.0
        for _ in range(repeats):
            calls, start = 0, time.perf_counter()
            while True:
                product = matmul(a, b)
                calls += 1
                if time.perf_counter() - start >= seconds / repeats:
                    break
            float(product[0, 0])
            tf.test.experimental.sync_devices()
            elapsed = time.perf_counter() - start
            best = max(best, 2.0 * n**3 * calls / elapsed)
    return best
