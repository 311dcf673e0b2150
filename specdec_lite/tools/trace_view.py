"""Show a speculative run token by token: what was accepted, rejected, corrected, and the bonus (notebook 08).

Every drafted token gets a role, and each role has its own colour (`plots.COLORS`):
  accepted    a drafted token the target kept                    [tok]   in text
  rejected    a drafted token the target threw away (struck out)  ~tok~
              (only the first rejected draft of a step was tested; the ones after it are discarded unseen)
  correction  the target's token at the first rejection           {tok}
              (its argmax when greedy, a draw from norm(max(0, p - q)) when sampling)
  bonus       the target's extra token after a fully accepted step <tok>
  target      a plain target step with nothing drafted (the last token of a run can be one)  (tok)
Steps are separated by a bar. `trace_html` builds HTML for a notebook, `trace_text` a plain-text
version for terminals (optionally with ANSI colours), e.g. for the CLI demo; `stream_text` the
text of one streamed step (`on_step`), coloured by role, for `demo --stream`.

A trace (`GenerationResult.trace`) records every step, each told apart by its type: `StepTrace`
(a drafted chain step), `TreeStepTrace` (a tree step, from `tree_generate`: node `tokens`, node 0
the root, `parents`, the accepted path `accepted_nodes`), `PlainStep` (role "target") and `EosCut`
(the step before it is shown only up to its EOS). Inline, a tree step shows its accepted path and
the rejected children of the path's last node; `tree_branches_html` / `tree_branches_text` draw
every branch of every tree step, the discarded ones struck out.

What it does not do: run anything. These are pure functions from trace data (plus a function
that turns one token id into its text) to strings.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Callable, Sequence

from ..algorithm.results import EosCut, PlainStep, StepTrace, TraceStep, TreeStepTrace
from .plots import COLORS

ROLES = ("accepted", "rejected", "correction", "bonus", "target")
ROLE_LABELS = {
    "accepted": "accepted draft token",
    "rejected": "rejected draft token",
    "correction": "target's correction",
    "bonus": "bonus token",
    "target": "plain target step",
}
TEXT_MARKERS = {"accepted": "[{}]", "rejected": "~{}~", "correction": "{{{}}}", "bonus": "<{}>", "target": "({})"}
ANSI = {"accepted": "32", "rejected": "31;9", "correction": "35", "bonus": "36", "target": "34"}
WHITESPACE = {" ": "·", "\n": "↵", "\t": "⇥", "\r": "␍"}

Decode = Callable[[int], str]


@dataclass(frozen=True)
class TokenMark:
    """One token as the trace shows it."""

    token: int
    role: str  # one of ROLES
    step: int  # 0-based step index
    p: float | None = None  # p_i(x_i) for drafted tokens
    q: float | None = None  # q_i(x_i) for drafted tokens
    resampled: bool = False  # a correction drawn from the residual norm(max(0, p - q))
    tested: bool = True  # False for drafts after a step's first rejection: discarded unseen


def token_decoder(tokenizer) -> Decode:
    """token id -> its text, special tokens included (an EOS should be visible in a trace)."""
    return lambda token: tokenizer.decode([token], skip_special_tokens=False)


def visible_text(text: str) -> str:
    """Whitespace made visible: space ·, newline ↵, tab ⇥; an empty token shows as ∅."""
    return "".join(WHITESPACE.get(char, char) for char in text) if text else "∅"


def chain_step_marks(step: StepTrace, index: int) -> list[TokenMark]:
    """The marks of one chain step: accepted, rejected (struck out), then the correction or bonus."""
    marks = [TokenMark(token, "accepted" if i < step.n_accepted else "rejected", index, step.p[i], step.q[i],
                       tested=i <= step.n_accepted) for i, token in enumerate(step.proposed)]
    last_role = "bonus" if step.n_accepted == len(step.proposed) else "correction"
    return marks + [TokenMark(step.next_token, last_role, index, resampled=step.resampled)]


def tree_step_marks(step: TreeStepTrace, index: int) -> list[TokenMark]:
    """The marks of one tree step: the accepted path, the first rejected child of each path node, the next token.

    The next token is a bonus when the accepted path ends at a leaf (the draft had nothing more to offer).
    """
    path = list(step.accepted_nodes)
    marks = [TokenMark(step.tokens[node], "accepted", index) for node in path]
    last = path[-1] if path else 0  # node 0: the root
    children = [node for node, parent in enumerate(step.parents) if parent == last]
    marks += [TokenMark(step.tokens[node], "rejected", index) for node in children]
    return marks + [TokenMark(step.next_token, "correction" if children else "bonus", index,
                              resampled=step.resampled)]


def step_marks(step: StepTrace | TreeStepTrace | PlainStep, index: int) -> list[TokenMark]:
    if isinstance(step, StepTrace):
        return chain_step_marks(step, index)
    if isinstance(step, TreeStepTrace):
        return tree_step_marks(step, index)
    return [TokenMark(step.token, "target", index)]


def cut_after(marks: list[TokenMark], kept: int) -> list[TokenMark]:
    """A step's marks up to its `kept`-th emitted token (the EOS); what came after it was never emitted."""
    emitted = 0
    for i, mark in enumerate(marks):
        emitted += mark.role != "rejected"
        if emitted == kept:
            return marks[: i + 1]
    return marks


def trace_marks(trace: Sequence[TraceStep]) -> list[TokenMark]:
    """Marks for a whole run, step by step; an `EosCut` cuts the step before it."""
    steps: list[list[TokenMark]] = []
    for step in trace:
        if isinstance(step, EosCut):
            steps[-1] = cut_after(steps[-1], step.kept)
        else:
            steps.append(step_marks(step, len(steps)))
    return [mark for marks in steps for mark in marks]


def mark_tooltip(mark: TokenMark) -> str:
    """Role, how a correction was chosen, and p, q of a tested draft (an untested one's p was computed
    after a rejected token, so it means nothing)."""
    label = ROLE_LABELS[mark.role] if mark.tested else "discarded draft token, never tested (after the first rejection)"
    if mark.role == "correction":
        label += ", resampled from norm(max(0, p − q))" if mark.resampled else ", the target's choice"
    if mark.p is not None and mark.tested:
        label += f", p={mark.p:.3f} q={mark.q:.3f}"
    return f"step {mark.step + 1}: {label} (id {mark.token})"


def token_span_html(mark: TokenMark, decode: Decode) -> str:
    """One token as a coloured <span>; rejected tokens are struck through."""
    color = COLORS[mark.role]
    style = f"background:{color}26;border-bottom:2px solid {color};padding:0 1px;margin:0 1px;border-radius:2px"
    if mark.role == "rejected":
        style += f";text-decoration:line-through;color:{color}"
    text = html.escape(visible_text(decode(mark.token)))
    return f'<span class="sd-{mark.role}" title="{html.escape(mark_tooltip(mark))}" style="{style}">{text}</span>'


STEP_BAR = '<span class="sd-step" style="border-left:2px solid #999;margin:0 3px"></span>'


def legend_html(roles: Sequence[str] = ROLES) -> str:
    items = [f'<span style="background:{COLORS[role]}26;border-bottom:2px solid {COLORS[role]};padding:0 4px;'
             f'margin-right:8px{";text-decoration:line-through" if role == "rejected" else ""}">'
             f"{ROLE_LABELS[role]}</span>" for role in roles]
    items.append(f"{STEP_BAR} step boundary")
    return f'<div class="sd-legend" style="margin-bottom:6px;font-size:90%">{"".join(items)}</div>'


def trace_html(trace: Sequence[TraceStep], decode: Decode, prompt: str | None = None, legend: bool = True) -> str:
    """The run as HTML: optional grey prompt, then every step's tokens in their role's colour."""
    parts, previous_step = [], None
    for mark in trace_marks(trace):
        if previous_step is not None and mark.step != previous_step:
            parts.append(STEP_BAR)
        parts.append(token_span_html(mark, decode))
        previous_step = mark.step
    head = legend_html() if legend else ""
    shown_prompt = f'<span style="color:#888">{html.escape(prompt)}</span>{STEP_BAR}' if prompt else ""
    body = f'<div style="font-family:monospace;line-height:2;white-space:pre-wrap">{shown_prompt}{"".join(parts)}</div>'
    return f'<div class="sd-trace">{head}{body}</div>'


def marked_text(role: str, text: str, color: bool) -> str:
    """`text` inside its role's marker, e.g. ~text~ for a rejected token; ANSI-coloured if `color`."""
    text = TEXT_MARKERS[role].format(text)
    return f"\x1b[{ANSI[role]}m{text}\x1b[0m" if color else text


def token_text(mark: TokenMark, decode: Decode, color: bool) -> str:
    return marked_text(mark.role, visible_text(decode(mark.token)), color)


def legend_text(color: bool = False) -> str:
    """The markers with their meaning, one line, for printing above `trace_text`."""
    return "  ".join(marked_text(role, ROLE_LABELS[role], color) for role in ROLES) + "  | step boundary"


def trace_text(trace: Sequence[TraceStep], decode: Decode, color: bool = False) -> str:
    """The run as one line of text: [accepted] ~rejected~ {correction} <bonus> (target), steps split by ' | '."""
    steps: dict[int, list[str]] = {}
    for mark in trace_marks(trace):
        steps.setdefault(mark.step, []).append(token_text(mark, decode, color))
    return " | ".join("".join(tokens) for tokens in steps.values())


def stream_text(tokens: Sequence[int], step: StepTrace | TreeStepTrace | PlainStep, decode: Decode,
                color: bool = False) -> str:
    """The text of the `tokens` one step emitted (an `on_step` call), each ANSI-coloured by its role when `color`.

    Roles: accepted, correction, bonus or target (rejected drafts were never emitted). What it
    does not do: mark roles without colour (the text is returned as it is), or join a character
    whose bytes span two tokens (each token is decoded alone, so such a character shows as �).
    """
    marks = [mark for mark in step_marks(step, 0) if mark.role != "rejected"][: len(tokens)]
    return "".join(f"\x1b[{ANSI[mark.role]}m{decode(mark.token)}\x1b[0m" if color else decode(mark.token)
                   for mark in marks)


def tree_branches(step: TreeStepTrace) -> list[list[int]]:
    """Every branch of a tree step: the drafted node indices from below the root to a leaf."""
    has_child = set(step.parents)
    branches = []
    for leaf in (node for node in range(1, len(step.tokens)) if node not in has_child):
        branch = [leaf]
        while step.parents[branch[-1]] > 0:
            branch.append(step.parents[branch[-1]])
        branches.append(branch[::-1])
    return branches


def branch_marks(step: TreeStepTrace, branch: list[int], index: int) -> list[TokenMark]:
    """A branch's nodes: accepted while on the accepted path, rejected from the first node off it."""
    on_path = set(step.accepted_nodes)
    return [TokenMark(step.tokens[node], "accepted" if node in on_path else "rejected", index) for node in branch]


def tree_steps(trace: Sequence[TraceStep]) -> list[tuple[int, TreeStepTrace]]:
    """(step index, step) of each tree step; the index counts every step, as in `trace_marks`."""
    steps = [step for step in trace if not isinstance(step, EosCut)]
    return [(index, step) for index, step in enumerate(steps) if isinstance(step, TreeStepTrace)]


def tree_branches_html(trace: Sequence[TraceStep], decode: Decode) -> str:
    """One row per tree step, one line per branch: the kept path green, discarded branches struck out."""
    rows = []
    for index, step in tree_steps(trace):
        lines = ["".join(token_span_html(mark, decode) for mark in branch_marks(step, branch, index))
                 for branch in tree_branches(step)]
        next_mark = tree_step_marks(step, index)[-1]
        rows.append(f'<tr><td style="vertical-align:top;padding-right:8px">step {index + 1}</td>'
                    f'<td>{"<br>".join(lines)}</td><td style="vertical-align:top">→ '
                    f"{token_span_html(next_mark, decode)}</td></tr>")
    return f'<table class="sd-tree" style="font-family:monospace">{"".join(rows)}</table>'


def tree_branches_text(trace: Sequence[TraceStep], decode: Decode, color: bool = False) -> str:
    """The tree steps as text: each branch on its own line, the next token after the arrow."""
    lines = []
    for index, step in tree_steps(trace):
        next_mark = tree_step_marks(step, index)[-1]
        lines.append(f"step {index + 1} -> {token_text(next_mark, decode, color)}")
        lines += ["    " + "".join(token_text(mark, decode, color) for mark in branch_marks(step, branch, index))
                  for branch in tree_branches(step)]
    return "\n".join(lines)
