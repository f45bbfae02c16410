"""The GradientTape training loop tapebench measures: models, data, variants, timed loop.

TensorFlow only; knows nothing about benchmarks, files or pandas. Importing this package
does not import TensorFlow: ``trainloop.config``, ``trainloop.idx`` and
``trainloop.datasets`` are NumPy-only so an orchestrating process can use them.
"""
