"""Device selection (notebook 00): cuda, else mps, else cpu, with two ways to override.

What it does not do: check that the chosen device has enough memory for a model, or print.
"""

from __future__ import annotations

import os

import torch

DEVICE_ENV_VAR = "SPECDEC_LITE_DEVICE"
KNOWN_DEVICE_TYPES = ("cpu", "cuda", "mps")


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The device to run on: `device` if given, else `$SPECDEC_LITE_DEVICE`, else cuda > mps > cpu."""
    choice = device if device is not None else os.environ.get(DEVICE_ENV_VAR) or None
    if choice is not None:
        chosen = torch.device(choice)
        if chosen.type not in KNOWN_DEVICE_TYPES:
            raise ValueError(f"device must be one of {KNOWN_DEVICE_TYPES} (optionally with an index), got {choice!r}")
        return chosen
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
