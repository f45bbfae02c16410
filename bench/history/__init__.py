"""The regression history: run summaries of many commits (and machines) in one database,
and the change points found in it. ``tables`` is the schema, ``rows`` turns run records
into rows, ``store`` reads and writes them, ``series`` groups them into per-cell series
for ``reports.changepoints``."""
