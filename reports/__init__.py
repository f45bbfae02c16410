"""Reports from stored tapebench runs: tidy DataFrames, statistics, tables.

pandas and NumPy only: this package never imports TensorFlow, so results can be read,
summarised and compared on any machine that holds a results directory.
"""
