"""Benchmarks of tapebench itself: the pytest-benchmark suite of the reference step
(``pytest bench/benchmarks``) and scripts that check speed and statistical targets by
printing ratios measured side by side in one run (``python -m bench.benchmarks.<name>``)."""
