"""Document checks, one module per layer of reference §6 (P, C, G, M).

Each module exposes ``check_*`` functions taking the parsed tree (and, where it
helps, the model) plus a :class:`~pidf.checks.common.CheckContext`.
"""
