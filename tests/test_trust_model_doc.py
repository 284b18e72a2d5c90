"""docs/trust-model.md states the trust model of every surface and is linked from the README;
its links into the other docs resolve."""

from __future__ import annotations

import re

from helpers import REPO

DOC = (REPO / "docs" / "trust-model.md").read_text()


def test_every_surface_has_its_section_and_the_readme_links_it():
    headings = re.findall(r"^## (.+)$", DOC, re.M)
    for surface in ("MQTT", "SSH", "Web", "`/metrics`", "Files"):
        assert any(h.startswith(surface) for h in headings), (surface, headings)
    assert "(docs/trust-model.md)" in (REPO / "README.md").read_text()


def test_local_links_resolve_to_files_and_headings():
    def anchors(text: str) -> set[str]:
        return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-")
                for h in re.findall(r"^#+ (.+)$", text, re.M)}

    for target in re.findall(r"\]\(([^)#]+\.md)(?:#([^)]+))?\)", DOC):
        path, anchor = target
        doc = REPO / "docs" / path
        assert doc.exists(), path
        if anchor:
            assert anchor in anchors(doc.read_text()), (path, anchor)


def test_the_flags_it_names_exist():
    from devsim_tui.cli import build_parser

    help_text = "\n".join(a for a in re.findall(r"`(--[a-z-]+)", DOC))
    parser_text = repr(build_parser()._actions)
    for sub in build_parser()._subparsers._group_actions[0].choices.values():
        parser_text += repr(sub._actions)
        for action in sub._actions:
            if hasattr(action, "choices") and isinstance(action.choices, dict):
                for subsub in action.choices.values():
                    parser_text += repr(subsub._actions)
    missing = [flag for flag in sorted(set(help_text.split()))
               if f"'{flag}'" not in parser_text and flag != "--mqtt-allow-commands"]
    assert not missing, missing
