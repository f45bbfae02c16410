"""``tapebench tune``: the fastest configuration of a workload on this machine that keeps
its arithmetic and learns as well -- found by successive halving over fresh-process runs,
checked by an accuracy guard, and explained by profiles."""
