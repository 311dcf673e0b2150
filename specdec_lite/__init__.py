"""specdec_lite: speculative decoding for LLMs, small enough to read, tested enough to trust.

The notebooks in `notebooks/` derive each idea; this package holds the tested version:
  device.py            pick_device                                   (notebook 00)
  offline_pair.py      the offline Qwen2.5-Coder pair from PyPI chunks (notebook 00)
  pair.py              load_pair, ModelPair                          (notebook 00)
  sampling.py          logits_to_probs, sample                       (notebook 01)
  draft.py             propose                                       (notebook 01)
  kv_cache.py          keep_first (rollback)                         (notebooks 01, 03)
  verification.py      target_logits, accept_greedy, accept_speculative (notebooks 02, 04)
  speculative.py       speculative_generate                          (notebook 03)
  autoregressive.py    autoregressive_generate (the baseline)        (notebook 01)
  draft_length.py      FixedK, HeuristicK (adaptive K)               (notebook 05)
  theory.py            alpha, expected speed-up, best K, measure_c   (notebook 05)
  bench.py             `python -m specdec_lite bench`                (notebook 05)
  token_tree.py, tree_draft.py, tree_verification.py, tree_generate.py
                       Medusa-lite: branches verified as one token tree (notebook 06)
  trace_view.py        coloured token traces (HTML and text)         (notebook 07)
  explorer.py          the ipywidgets explorer                       (notebook 07)
  tiny_models.py, toy_lm.py  small models for fast tests
"""

from .autoregressive import autoregressive_generate
from .device import pick_device
from .draft_length import FixedK, HeuristicK
from .pair import ModelPair, load_pair
from .results import GenerationResult, GenerationStats, StepTrace
from .sampling import logits_to_probs, sample
from .speculative import speculative_generate
from .tree_generate import TreeStepTrace, tree_generate

__all__ = [
    "FixedK", "GenerationResult", "GenerationStats", "HeuristicK", "ModelPair", "StepTrace", "TreeStepTrace",
    "autoregressive_generate", "load_pair", "logits_to_probs", "pick_device", "sample", "speculative_generate",
    "tree_generate",
]
