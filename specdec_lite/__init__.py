"""specdec_lite: speculative decoding for LLMs, small enough to read, tested enough to trust.

The notebooks in `notebooks/` derive each idea; this package holds the tested version:
  device.py         pick_device                       (notebook 00)
  pair.py           load_pair, ModelPair              (notebook 00)
  sampling.py       logits_to_probs, sample           (notebook 01)
  draft.py          propose                           (notebook 01)
  verification.py   target_logits, accept rules       (notebooks 02, 04)
  kv_cache.py       keep_first (rollback)             (notebooks 01, 03)
  speculative.py    speculative_generate              (notebook 03)
  autoregressive.py autoregressive_generate           (notebook 01)
  theory.py         alpha, expected speed-up          (notebook 05)
"""

from .autoregressive import autoregressive_generate
from .device import pick_device
from .draft_length import FixedK, HeuristicK
from .pair import ModelPair, load_pair
from .results import GenerationResult, GenerationStats, StepTrace
from .sampling import logits_to_probs, sample
from .speculative import speculative_generate

__all__ = [
    "FixedK", "GenerationResult", "GenerationStats", "HeuristicK", "ModelPair", "StepTrace",
    "autoregressive_generate", "load_pair", "logits_to_probs", "pick_device", "sample", "speculative_generate",
]
