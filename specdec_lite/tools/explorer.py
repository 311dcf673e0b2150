"""An interactive panel to play with speculative decoding: prompt, method, K, temperature, top-p (notebook 08).

The panel is thin. Everything a click does lives in plain functions that tests call without a browser:
  ExplorerSettings      the knobs, validated (ValueError naming the knob)
  run_request           one run of the chosen method plus the plain baseline -> ExplorerOutput
  ExplorerOutput.html   the coloured trace and the numbers: α, tokens per target forward, speed-up
  alpha_from_trace      α estimated from a chain trace (accepted / drafts the target actually tested)
  active_controls       which sliders matter for a method and tree shape (the others are greyed out)
`build_explorer(pair)` wires those to ipywidgets, which it imports only when called.

What it does not do: benchmark. The speed-up is one run each (after a 2-token warm-up), so it
is noisy; `python -m specdec_lite bench` measures properly.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass

from ..algorithm.autoregressive import autoregressive_generate
from ..algorithm.chain import speculative_generate
from ..algorithm.draft_length import HeuristicK
from ..algorithm.results import GenerationResult, StepTrace, TraceStep, TreeStepTrace
from ..algorithm.tree import SHAPES, tree_generate
from ..models.pair import ModelPair
from .trace_view import token_decoder, trace_html, tree_branches_html

METHODS = ("auto", "chain", "adaptive", "tree")
METHOD_LABELS = {"auto": "chain, cost-aware K", "chain": "chain, fixed K", "adaptive": "chain, adaptive K", "tree": "token tree"}
WARMUP_TOKENS = 2


@dataclass(frozen=True)
class ExplorerSettings:
    """What the panel's controls hold. "auto" (the default) is the chain with the cost-aware K
    (`k="auto"` of `speculative_generate`); `k` is the draft length of "chain" (the starting K for "adaptive");
    the token tree (method "tree" only) has `tree_shape` "chains" (`n_branches` chains of `depth` tokens),
    "dynamic" (the `n_nodes` drafted nodes of highest draft path probability, at most `depth` deep) or "auto"
    (that tree, drafted and verified only as far as the pair's calibrated costs say it pays), as in
    `tree_generate`."""

    prompt: str
    method: str = "auto"
    k: int = 4
    temperature: float = 0.0
    top_p: float = 1.0
    tree_shape: str = "chains"
    n_branches: int = 2
    n_nodes: int = 8
    depth: int = 4
    max_new_tokens: int = 48
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.prompt:
            raise ValueError("prompt must not be empty")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.tree_shape not in SHAPES:
            raise ValueError(f"tree_shape must be one of {SHAPES}, got {self.tree_shape!r}")
        for name in ("k", "n_branches", "n_nodes", "depth", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


def active_controls(method: str, tree_shape: str = "chains") -> set[str]:
    """The controls that change a run of `method` (K is the starting K for "adaptive"); for the tree, the
    shape's own size control: `n_branches` for "chains", `n_nodes` (the node budget) for "dynamic" and "auto"."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if tree_shape not in SHAPES:
        raise ValueError(f"tree_shape must be one of {SHAPES}, got {tree_shape!r}")
    sampling = {"prompt", "temperature", "top_p", "max_new_tokens", "seed"}
    tree = {"tree_shape", "depth", "n_branches" if tree_shape == "chains" else "n_nodes"}
    return sampling | {"tree": tree, "auto": set()}.get(method, {"k"})


def tree_arguments(settings: ExplorerSettings) -> dict:
    """`tree_generate`'s shape arguments for the settings' tree shape."""
    size = {"n_branches": settings.n_branches} if settings.tree_shape == "chains" else {"n_nodes": settings.n_nodes}
    return dict(shape=settings.tree_shape, depth=settings.depth, **size)


def sampling_arguments(settings: ExplorerSettings) -> dict:
    return dict(temperature=settings.temperature, top_p=settings.top_p, seed=settings.seed)


def plain_key(settings: ExplorerSettings) -> tuple:
    """What the plain baseline depends on: the same key means the same baseline run can be reused."""
    return settings.prompt, settings.temperature, settings.top_p, settings.max_new_tokens, settings.seed


def run_method(pair: ModelPair, settings: ExplorerSettings, max_new_tokens: int) -> GenerationResult:
    """One run of the chosen method with the chosen knobs."""
    common = dict(max_new_tokens=max_new_tokens, **sampling_arguments(settings))
    if settings.method == "tree":
        return tree_generate(pair, settings.prompt, **tree_arguments(settings), **common)
    k = {"adaptive": HeuristicK(k=settings.k, k_max=max(16, settings.k)), "auto": "auto"}.get(settings.method, settings.k)
    return speculative_generate(pair, settings.prompt, k=k, **common)


def alpha_from_trace(trace: list[TraceStep]) -> float | None:
    """α from a chain trace: accepted / tested. A step tests its drafts up to its first rejection; the drafts
    after it are never tested, so accepted / drafted (`stats.acceptance_rate`) undercounts α. None for a tree,
    or when nothing was drafted."""
    drafted = [step for step in trace if isinstance(step, StepTrace)]
    if not drafted or any(isinstance(step, TreeStepTrace) for step in trace):
        return None
    accepted = sum(step.n_accepted for step in drafted)
    rejected = sum(not step.is_bonus for step in drafted)  # at most one rejection per step
    return accepted / (accepted + rejected)


@dataclass
class ExplorerOutput:
    """One click's worth of results: the method's run, the plain baseline, and how to show them."""

    settings: ExplorerSettings
    result: GenerationResult
    plain: GenerationResult
    decode: object  # token id -> text

    @property
    def acceptance_rate(self) -> float:
        """accepted / drafted tokens."""
        return self.result.stats.acceptance_rate

    @property
    def alpha(self) -> float | None:
        """accepted / tested drafts: the acceptance rate â of the notation table (chain methods; None for the tree)."""
        return alpha_from_trace(self.result.trace)

    @property
    def tokens_per_target_forward(self) -> float:
        return self.result.stats.tokens_per_target_forward

    @property
    def speedup(self) -> float:
        """tokens/s of the method over tokens/s of plain decoding, same prompt and knobs (one run each)."""
        plain_speed = self.plain.stats.tokens_per_second
        return self.result.stats.tokens_per_second / plain_speed if plain_speed else 0.0

    @property
    def same_as_plain(self) -> bool:
        return self.result.token_ids == self.plain.token_ids

    def summary_html(self) -> str:
        return summary_html(self)

    def html(self) -> str:
        """The numbers, then the coloured trace (and, for a tree, every branch of every step)."""
        trace = trace_html(self.result.trace, self.decode, prompt=self.settings.prompt)
        tree = tree_branches_html(self.result.trace, self.decode) if self.settings.method == "tree" else ""
        return self.summary_html() + trace + tree


def summary_html(output: ExplorerOutput) -> str:
    """A one-row table: method, α, accepted / drafted, tokens per target forward, tokens/s of both, speed-up."""
    stats, plain = output.result.stats, output.plain.stats
    cells = {
        "method": METHOD_LABELS[output.settings.method],
        "α (accepted / tested)": "n/a for a tree" if output.alpha is None else f"{output.alpha:.2f}",
        "accepted / drafted": f"{stats.accepted}/{stats.proposed} = {output.acceptance_rate:.2f}",
        "tokens per target forward": f"{output.tokens_per_target_forward:.2f}",
        "tokens/s (plain → this)": f"{plain.tokens_per_second:.1f} → {stats.tokens_per_second:.1f}",
        "speed-up over plain": f"{output.speedup:.2f}×",
    }
    if output.settings.temperature == 0:
        cells["same tokens as plain greedy"] = "yes" if output.same_as_plain else "no: in bf16 a K-token and a 1-token forward round differently"
    head = "".join(f"<th style='padding:2px 8px'>{html.escape(name)}</th>" for name in cells)
    row = "".join(f"<td style='padding:2px 8px'>{html.escape(value)}</td>" for value in cells.values())
    return f'<table class="sd-summary"><tr>{head}</tr><tr>{row}</tr></table>'


def run_request(pair: ModelPair, settings: ExplorerSettings, plain_cache: dict | None = None) -> ExplorerOutput:
    """Run `settings` on `pair` and the plain baseline for the same prompt and knobs.

    With a `plain_cache` dict, the baseline is reused while `plain_key(settings)` is unchanged
    (moving only K, the method or the tree shape does not re-run it).
    """
    key = plain_key(settings)
    cache = {} if plain_cache is None else plain_cache
    if key not in cache:
        autoregressive_generate(pair, settings.prompt, WARMUP_TOKENS, **sampling_arguments(settings))
        cache[key] = autoregressive_generate(pair, settings.prompt, settings.max_new_tokens,
                                             **sampling_arguments(settings))
    run_method(pair, settings, WARMUP_TOKENS)
    result = run_method(pair, settings, settings.max_new_tokens)
    return ExplorerOutput(settings, result, cache[key], token_decoder(pair.tokenizer))


def error_html(error: Exception) -> str:
    return f'<div style="color:#d62728">{html.escape(type(error).__name__)}: {html.escape(str(error))}</div>'


def build_explorer(pair: ModelPair, settings: ExplorerSettings | None = None):
    """The ipywidgets panel for `pair`, starting from `settings` (default: a code prompt, chain, K=4)."""
    import ipywidgets as widgets

    start = settings or ExplorerSettings('def fibonacci(n: int) -> int:\n    """Return the n-th Fibonacci number."""\n')
    controls = explorer_controls(widgets, start)
    run_button = widgets.Button(description="Run", button_style="primary", icon="play")
    shown = widgets.HTML(value="<i>Press Run.</i>")
    plain_cache: dict = {}

    def grey_out(_change=None) -> None:
        active = active_controls(controls["method"].value, controls["tree_shape"].value)
        for name, control in controls.items():
            control.disabled = name not in active and name != "method"

    def on_run(_button) -> None:
        shown.value = "<i>Running…</i>"
        try:
            values = {name: control.value for name, control in controls.items()}
            shown.value = run_request(pair, ExplorerSettings(**values), plain_cache).html()
        except (ValueError, ImportError) as error:
            shown.value = error_html(error)

    controls["method"].observe(grey_out, names="value")
    controls["tree_shape"].observe(grey_out, names="value")
    run_button.on_click(on_run)
    grey_out()
    return widgets.VBox([*controls.values(), run_button, shown])


def explorer_controls(widgets, settings: ExplorerSettings) -> dict:
    """One control per ExplorerSettings field, holding that field's starting value."""
    values = asdict(settings)
    style = {"description_width": "9em"}
    layout = widgets.Layout(width="36em")
    return {
        "prompt": widgets.Textarea(value=values["prompt"], description="prompt", rows=4, layout=layout, style=style),
        "method": widgets.ToggleButtons(options=[(METHOD_LABELS[m], m) for m in METHODS], value=values["method"],
                                        description="method", style=style),
        "k": widgets.IntSlider(values["k"], 1, 12, description="K (draft length)", style=style, layout=layout),
        "temperature": widgets.FloatSlider(values["temperature"], min=0.0, max=2.0, step=0.1,
                                           description="temperature", style=style, layout=layout),
        "top_p": widgets.FloatSlider(values["top_p"], min=0.05, max=1.0, step=0.05, description="top-p",
                                     style=style, layout=layout),
        "tree_shape": widgets.ToggleButtons(options=list(SHAPES), value=values["tree_shape"],
                                            description="tree shape", style=style),
        "n_branches": widgets.IntSlider(values["n_branches"], 1, 8, description="tree n_branches", style=style,
                                      layout=layout),
        "n_nodes": widgets.IntSlider(values["n_nodes"], 1, 32, description="tree node budget", style=style,
                                     layout=layout),
        "depth": widgets.IntSlider(values["depth"], 1, 8, description="tree depth", style=style, layout=layout),
        "max_new_tokens": widgets.IntSlider(values["max_new_tokens"], 8, 128, step=8, description="new tokens",
                                            style=style, layout=layout),
        "seed": widgets.IntText(values["seed"], description="seed", style=style),
    }
