"""The algorithm: sampling, draft, verification, cache rollback, the chain and tree loops, draft-length policies.

What it does not do: load models (see `specdec_lite.models`) or show, measure or explain results
(see `specdec_lite.tools`).
"""
