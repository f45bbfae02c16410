"""Orchestration: configuration, the command line, isolated worker runs, fingerprints and
result storage. Imports trainloop and reports; nothing imports bench.

The parent process never imports TensorFlow; each run executes in ``bench.worker``.
"""
