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
    if device is not None:
        return checked_device(device, "device")
    if os.environ.get(DEVICE_ENV_VAR):
        return checked_device(os.environ[DEVICE_ENV_VAR], f"${DEVICE_ENV_VAR}")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def checked_device(choice: str | torch.device, source: str) -> torch.device:
    """`choice` as a torch.device; ValueError naming `source` if it is not cpu, cuda or mps."""
    try:
        chosen = torch.device(choice)
    except (RuntimeError, TypeError):
        chosen = None
    if chosen is None or chosen.type not in KNOWN_DEVICE_TYPES:
        raise ValueError(f"{source} must be one of {KNOWN_DEVICE_TYPES} (optionally with an index, e.g. 'cuda:1'), "
                         f"got {choice!r}")
    return chosen
