"""`python -m specdec_lite <command>`: `demo` (speculative decoding on the offline pair), `bench`
and `quality`.

Each command lives in its own module, which defines `add_arguments(parser)` and `run(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib

COMMANDS = {
    "demo": "speculative decoding on a prompt: the continuation, acceptance rate and speed-up over plain decoding",
    "bench": "benchmark plain, speculative and Hugging Face assisted decoding side by side",
    "quality": "what a dtype (default int8) costs the target: greedy divergence and top-1 agreement vs bf16",
}


class DefaultsFormatter(argparse.HelpFormatter):
    """Append "(default: X)" to an option's help unless X is None/False or the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return text + " (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m specdec_lite", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")
    for name, help_text in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text,
                                  formatter_class=DefaultsFormatter)
        importlib.import_module(f"specdec_lite.tools.{name}").add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return importlib.import_module(f"specdec_lite.tools.{args.command}").run(args)
