"""One training step on one device and mirrored over two logical CPUs, from the same
weights on the same global batch; prints the two losses and the gradients Adam applied
(its first moments / (1 - beta_1)) as JSON.

Run in a fresh process (``python -m tests.bench.mirrored_step``): the CPU must be split into
logical devices before TensorFlow starts. The global batch is one set of examples twice, so
each replica's half equals the other's and BatchNorm's per-replica statistics equal the
single device's: the two steps must agree to rounding, and a wrong gradient scaling (each
replica's mean loss summed over replicas, say) shows as a factor of two.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import tensorflow as tf

from trainloop.strategies import split_cpu

split_cpu(2)

from tests.conftest import learnable_arrays  # noqa: E402
from trainloop import inputs  # noqa: E402
from trainloop.config import Variant, Workload  # noqa: E402
from trainloop.feeds import DistributedFeed  # noqa: E402
from trainloop.session import open_session  # noqa: E402

WORKLOAD = Workload(model="tiny", dataset="mnist", batch_size=32, epochs=1)


def applied_gradients(optimizer, variables) -> list[list[float]]:
    """Adam's first moments after its first step, divided by (1 - beta_1)."""
    slots = {v.path.split("/", 1)[1]: v for v in optimizer.variables}
    return [
        (np.asarray(slots[v.path.replace("/", "_") + "_momentum"]) / (1 - optimizer.beta_1))
        .ravel()
        .tolist()
        for v in variables
    ]


def main() -> int:
    data = learnable_arrays(n_train=16)
    x, y = inputs.to_model_arrays(data.x_train, data.y_train, data.num_classes)
    x, y = np.concatenate([x, x]), np.concatenate([y, y])  # halves alike
    dataset = tf.data.Dataset.from_tensors((x, y)).repeat()
    out = {}
    with open_session(Variant("function"), WORKLOAD) as single:
        weights = single.model.get_weights()
        out["single_loss"] = float(single.train_step(tf.constant(x), tf.constant(y)))
        out["single"] = applied_gradients(single.optimizer, single.model.trainable_variables)
    mirrored = Variant("function", strategy="mirrored", replicas=2)
    with open_session(mirrored, WORKLOAD) as session:
        session.model.set_weights(weights)
        feed = DistributedFeed(session, dataset)
        feed.start_epoch(0)
        out["mirrored_loss"] = float(feed.run(feed.fetch(0, 1)))
        out["mirrored"] = applied_gradients(session.optimizer, session.model.trainable_variables)
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
