"""Operation categories for profile summaries: which kind of work an op type is.

Matching is by substring of the lower-cased type, so oneDNN's renamed kernels
(``_MklNativeFusedConv2D``) and their gradients land with the op they implement.
"""

from __future__ import annotations

# (category, substrings of the lower-cased op type), first match wins.
CATEGORY_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("idle", ("idle",)),
    ("XLA cluster", ("xla",)),
    ("all-reduce & collectives", ("collective", "allreduce", "nccl")),
    ("convolution", ("conv",)),
    ("matmul", ("matmul", "einsum")),
    ("pooling", ("pool",)),
    ("input pipeline", ("iterator", "dataset")),
    ("variables & optimizer updates", ("variable", "resourceapply")),
    (
        "data movement & casts",
        (
            "transpose",
            "reshape",
            "copy",
            "concat",
            "slice",
            "gather",
            "scatter",
            "pad",
            "tile",
            "broadcast",
            "pack",
            "split",
            "squeeze",
            "expanddims",
            "send",
            "recv",
            "cast",
        ),
    ),
    (
        "host-side overhead",
        (
            "identity",
            "noop",
            "partitionedcall",
            "_arg",
            "_retval",
            "const",
            "placeholder",
            "__inference",
        ),
    ),
    ("reduction", ("sum", "mean", "max", "min", "prod", "argm", "reduce", "all", "any")),
    (
        "elementwise",
        (
            "add",
            "sub",
            "mul",
            "div",
            "relu",
            "sigmoid",
            "tanh",
            "exp",
            "log",
            "sqrt",
            "square",
            "neg",
            "select",
            "equal",
            "greater",
            "less",
            "softmax",
            "biasadd",
            "batchnorm",
            "pow",
            "abs",
            "sign",
            "floor",
            "maximum",
            "minimum",
            "addn",
            "reciprocal",
            "fill",
            "zeros",
            "ones",
            "range",
        ),
    ),
)


def op_category(op_type: str) -> str:
    """The category of a profiler op type (e.g. ``_MklNativeFusedConv2D``: convolution)."""
    t = op_type.lower()
    for name, needles in CATEGORY_RULES:
        if any(n in t for n in needles):
            return name
    return "other"
