"""The README stays true: every subcommand and flag is documented, examples validate."""

from __future__ import annotations

import argparse

import pytest
from helpers import REPO

from devsim_tui.cli import build_parser
from devsim_tui.sim.command_file import load_commands

README = (REPO / "README.md").read_text()


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_readme_shows_the_two_commands():
    assert "make run" in README and "make test" in README


@pytest.mark.parametrize("name", sorted(_subparsers(build_parser())))
def test_every_subcommand_and_its_flags_are_in_the_readme(name):
    sub = _subparsers(build_parser())[name]
    assert f"devsim-tui {name}" in README, f"README does not mention `devsim-tui {name}`"
    for action in sub._actions:
        for opt in action.option_strings:
            if opt.startswith("--") and opt != "--help":
                assert opt in README, f"README does not document {name} {opt}"


def test_every_control_room_flag_is_in_the_readme():
    for action in build_parser()._actions:
        for opt in action.option_strings:
            if opt.startswith("--") and opt not in ("--help", "--version"):
                assert opt in README, f"README does not document {opt}"


@pytest.mark.parametrize("path", sorted((REPO / "docs" / "examples").glob("*.commands.yaml")),
                         ids=lambda p: p.name)
def test_example_command_files_validate(path):
    assert load_commands(path)


def _readme_yaml_blocks() -> list[tuple[str, str]]:
    """(file name, text) of every ```yaml block in the README that opens with `# NAME.yaml`."""
    import re

    return [(m.group(1), m.group(0)) for m in
            re.finditer(r"(?<=```yaml\n)# ([\w.-]+\.yaml)\n.*?(?=```)", README, re.S)]


def test_the_readme_has_profile_examples():
    assert any(name == "my-prod.yaml" for name, _ in _readme_yaml_blocks())


@pytest.mark.parametrize("name,text", _readme_yaml_blocks(), ids=lambda v: str(v)[:20])
def test_readme_yaml_examples_validate(name, text, tmp_path):
    """A profile example in the README loads as a user would load it (extends, validation)."""
    import yaml

    from devsim_tui.config.loader import load_profile

    path = tmp_path / name
    path.write_text(text)
    if "extends" in (yaml.safe_load(text) or {}):
        assert load_profile(str(path)).name


def test_docs_cite_nothing_outside_the_repository():
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = doc.read_text()
        assert "shared/reference" not in text and "../shared" not in text, doc.name


def _flag_rows(text: str, flag: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(f"| `{flag}")]


@pytest.mark.parametrize("doc", ["README.md", "docs/ui.md"])
def test_every_builtin_theme_is_offered_where_the_theme_flag_is_documented(doc):
    """Round 1's README and ui.md listed the themes by hand and left green-phosphor out."""
    rows = _flag_rows((REPO / doc).read_text(), "--theme NAME")
    assert rows, f"{doc} has no `--theme NAME` row"
    for theme in sorted(p.stem for p in (REPO / "themes").glob("*.yaml")):
        assert all(f"`{theme}`" in row for row in rows), f"{doc}: --theme omits {theme}"


_NUMBER_WORDS = {5: "Five", 6: "Six", 7: "Seven", 8: "Eight", 9: "Nine"}


def test_the_ui_doc_counts_and_names_every_pane():
    """docs/ui.md said five panes after the sixth and seventh had come."""
    from devsim_tui.ui.panes import PANE_SPECS

    text = " ".join((REPO / "docs" / "ui.md").read_text().split())
    assert f"{_NUMBER_WORDS[len(PANE_SPECS)]} panes:" in text
    for spec in PANE_SPECS:
        assert f"**{spec.digit} {spec.title}**" in text, spec.title


def test_the_headless_doc_sends_users_to_a_help_that_lists_the_commands():
    """headless.md once said `--help` lists the engine commands; it never did. Every command the
    page names is a real one, and the help it points at (`:help`) lists each of them."""
    import re

    from devsim_tui.sim import commands as C
    from devsim_tui.ui.routing import Router

    text = (REPO / "docs" / "headless.md").read_text()
    para = text[text.index("The vocabulary is"):].split("\n\n")[0]
    assert "--help" not in para
    assert "`:help`" in para
    named = re.findall(r"`([a-z][a-z-]+)`", para)
    C.load_feature_commands()
    shown = "\n".join(usage for usage, _note, _flag in Router().help_rows())
    for name in named:
        if name == "help":
            continue
        assert C.lookup(name) is not None, f"headless.md names `{name}`, not a command"
        assert name in shown, f"the help screen does not list {name}"
