"""The learner's tools around the algorithm: the CLI (demo, bench and its report), plots, trace view, explorer.

What it does not do: hold any part of the algorithm (see `specdec_lite.algorithm`).
"""
