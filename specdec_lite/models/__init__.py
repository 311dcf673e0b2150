"""Where the models come from: the device, a draft/target pair, the offline pair, tiny models for tests.

What it does not do: decode (see `specdec_lite.algorithm`).
"""
