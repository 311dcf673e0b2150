"""Packaging stays consistent: environment.yml agrees with pyproject.toml, the CLI documents every option."""

import argparse
import importlib
import re
import shlex
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from specdec_lite.tools.cli import COMMANDS, build_parser

ROOT = Path(__file__).parents[1]
TORCH_PIN = "torch==2.13.0"


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def environment_pip_lines() -> list[str]:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_sections = [item["pip"] for item in environment["dependencies"] if isinstance(item, dict)]
    assert len(pip_sections) == 1, "environment.yml must have exactly one pip section"
    return pip_sections[0]


def requirement_set(lines) -> set[str]:
    """Normalized 'name specifier' strings, so that spelling and order do not matter."""
    return {f"{Requirement(line).name.lower().replace('_', '-')} {Requirement(line).specifier}" for line in lines}


def test_environment_lists_exactly_the_runtime_and_dev_dependencies():
    project = pyproject()
    declared = requirement_set(project["dependencies"] + project["optional-dependencies"]["dev"])
    listed = [line for line in environment_pip_lines() if not line.startswith("-e ")]
    torch_pyproject = next(Requirement(r) for r in project["dependencies"] if Requirement(r).name == "torch")
    assert TORCH_PIN in listed and torch_pyproject.specifier.contains("2.13.0")
    listed_set = requirement_set(line for line in listed if line != TORCH_PIN) | {f"torch {torch_pyproject.specifier}"}
    assert listed_set == declared, (f"only in pyproject.toml: {sorted(declared - listed_set)}; "
                                    f"only in environment.yml: {sorted(listed_set - declared)}")


def test_environment_installs_the_package_with_dev_and_models_extras():
    editable = [line for line in environment_pip_lines() if line.startswith("-e ")]
    assert editable == ["-e .[dev,models]"]
    extras = pyproject()["optional-dependencies"]
    assert {"dev", "models", "notebooks"} <= set(extras)
    assert set(extras["notebooks"]) <= set(extras["dev"]), "dev must contain everything the notebooks need"


def test_environment_python_satisfies_requires_python():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = next(item for item in environment["dependencies"] if isinstance(item, str) and item.startswith("python="))
    version = python.split("=", 1)[1]
    assert Requirement(f"python{pyproject()['requires-python']}").specifier.contains(version)


def test_requires_python_promises_no_python_the_installed_transformers_refuses():
    lowest = min(spec.version for spec in SpecifierSet(pyproject()["requires-python"]) if spec.operator == ">=")
    transformers_python = metadata.metadata("transformers")["Requires-Python"]
    assert SpecifierSet(transformers_python).contains(lowest), (
        f"requires-python allows {lowest}, transformers {metadata.version('transformers')} needs {transformers_python}")


def test_hash_pinned_models_requirements_match_the_models_extra():
    text = (ROOT / "requirements-models.txt").read_text().replace("\\\n", " ")
    entries = [line.split() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert sorted(words[0] for words in entries) == sorted(pyproject()["optional-dependencies"]["models"])
    for words in entries:
        assert len(words) == 2 and re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", words[1]), words


def readme_commands() -> list[list[str]]:
    """Each line of the README's bash blocks as commands (shell words; continuations joined, comments dropped);
    a line `a && b` gives the commands a and b in a row. Does not expand variables or follow pipes."""
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    commands = []
    for words in (shlex.split(line, comments=True) for line in lines):
        while "&&" in words:
            commands.append(words[: words.index("&&")])
            words = words[words.index("&&") + 1:]
        if words:
            commands.append(words)
    return commands


def pip_extras(words: list[str]) -> set[str]:
    """The extras of the `-e ".[a,b]"` argument of a pip install command (empty if there is none)."""
    editable = words[words.index("-e") + 1] if "-e" in words else ""
    match = re.fullmatch(r"\.\[([\w,-]+)\]", editable)
    return set(match.group(1).split(",")) if match else set()


def test_readme_commands_exist_and_pin_the_ci_torch():
    commands = readme_commands()
    pip_installs = [words for words in commands if words[:2] == ["pip", "install"]]
    assert pip_installs, "the README shows no pip install command"
    extras = set(pyproject()["optional-dependencies"])
    for words in pip_installs:
        if "-e" in words or any(word.startswith("torch") for word in words):  # installs this package or torch
            assert TORCH_PIN in words, f"README: {shlex.join(words)} does not pin {TORCH_PIN} as CI does"
        assert pip_extras(words) <= extras, f"README: {shlex.join(words)} names an extra pyproject.toml lacks"
    parser = build_parser()
    for words in commands:
        if words[:3] == ["python", "-m", "specdec_lite"]:
            parser.parse_args(words[3:])  # exits (fails the test) on an unknown command or option


def test_readme_set_up_installs_then_runs_the_demo_and_the_tests():
    commands = readme_commands()
    follows = {(frozenset(pip_extras(a)), tuple(b[:4])) for a, b in zip(commands, commands[1:])
               if a[:2] == ["pip", "install"]}
    assert (frozenset({"models"}), ("python", "-m", "specdec_lite", "demo")) in follows
    assert (frozenset({"dev", "models"}), ("pytest",)) in follows


def test_ci_pins_the_same_torch_and_installs_dev_and_models():
    ci = (ROOT / ".ci" / "run").read_text()
    assert TORCH_PIN in ci and ".[dev,models]" in ci


def help_text(*argv: str) -> str:
    done = subprocess.run([sys.executable, "-m", "specdec_lite", *argv, "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_top_level_help_lists_every_command():
    text = help_text()
    for name in COMMANDS:
        assert name in text


@pytest.mark.parametrize("command", ["demo", "bench"])
def test_command_help_documents_every_option(command):
    parser = argparse.ArgumentParser()
    importlib.import_module(f"specdec_lite.tools.{command}").add_arguments(parser)
    options = [action for action in parser._actions if not isinstance(action, argparse._HelpAction)]
    assert options, f"{command} has no options"
    for action in options:
        assert action.help, f"{command} option {action.option_strings or action.dest} has no help text"
    text = help_text(command)
    for action in options:
        assert all(flag in text for flag in action.option_strings), f"{action.option_strings} missing from --help"


def test_demo_has_the_options_the_readme_promises():
    from specdec_lite.tools import demo

    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    flags = {flag for action in parser._actions for flag in action.option_strings}
    assert {"--prompt", "--max-new-tokens", "-k", "--temperature", "--top-k", "--top-p", "--seed", "--dtype",
            "--device", "--draft", "--target"} <= flags
