"""Themes: the shipped YAML themes load, register with Textual and expose the devsim CSS
variables; high-contrast really is high contrast; user themes are found through XDG; every
mistake in a theme file is reported as `FILE:LINE: field: message`; the chosen theme survives
a restart and a corrupt config file never crashes anything."""

from __future__ import annotations

import textwrap
import os
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.color import Color
from textual.theme import Theme
from textual.widgets import Static

from devsim_tui.errors import ConfigError, UserError
from devsim_tui.ui import themes
from devsim_tui.ui.themes import (
    DEFAULT_THEME,
    DEVSIM_VARIABLES,
    VARIABLE_DEFAULTS,
    config_dir,
    contrast_ratio,
    load_theme_file,
    load_themes,
    min_contrast,
    register_themes,
    remember_theme,
    remembered_theme,
    theme_pairs,
)

BUILTINS = {"control-room", "daylight", "high-contrast", "amber", "green-phosphor"}


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never read or write the real user's config: XDG points into the test's tmp dir."""
    xdg = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    return xdg / "devsim-tui"


# --------------------------------------------------------------------------- built-ins


def test_builtins_load_and_include_the_default() -> None:
    loaded = load_themes()
    assert BUILTINS <= set(loaded)
    assert DEFAULT_THEME in loaded
    for name, theme in loaded.items():
        assert isinstance(theme, Theme)
        assert theme.name == name
        assert set(DEVSIM_VARIABLES) <= set(theme.variables)
    assert loaded["daylight"].dark is False
    assert loaded["control-room"].dark is True


def test_builtins_register_on_a_bare_app() -> None:
    app = App()
    registered = register_themes(app)
    assert set(registered) >= BUILTINS
    for name in BUILTINS:
        assert app.get_theme(name) is registered[name]


def test_register_themes_takes_an_explicit_mapping() -> None:
    app = App()
    only = {"control-room": load_themes()["control-room"]}
    assert register_themes(app, only) == only
    assert app.get_theme("control-room") is only["control-room"]
    assert app.get_theme("amber") is None


async def test_env_variables_reach_the_stylesheet() -> None:
    """Textual merges Theme.variables into the CSS variables, so `.tcss` can use `$env-*`."""

    class Probe(App[None]):
        CSS = "#badge { background: $env-production; color: $env-experimental; }"

        def compose(self) -> ComposeResult:
            yield Static("PROD", id="badge")

    app = Probe()
    register_themes(app)
    app.theme = "high-contrast"
    async with app.run_test():
        badge = app.query_one("#badge")
        theme = app.get_theme("high-contrast")
        assert theme is not None
        assert badge.styles.background == Color.parse(theme.variables["env-production"])
        assert badge.styles.color == Color.parse(theme.variables["env-experimental"])


async def test_variable_defaults_keep_textuals_own_themes_working() -> None:
    """The app returns VARIABLE_DEFAULTS so that `$env-*` still parse under e.g. `nord`."""

    class Probe(App[None]):
        CSS = "#badge { background: $env-development; }"

        def get_theme_variable_defaults(self) -> dict[str, str]:
            return dict(VARIABLE_DEFAULTS)

        def compose(self) -> ComposeResult:
            yield Static("DEV", id="badge")

    app = Probe()
    app.theme = "nord"
    async with app.run_test():
        badge = app.query_one("#badge")
        assert badge.styles.background == Color.parse(VARIABLE_DEFAULTS["env-development"])


def test_environment_cues_are_told_apart_by_hue() -> None:
    """Production reads red, development green/blue, experimental violet/magenta."""
    for theme in load_themes().values():
        hue = {
            env: Color.parse(theme.variables[f"env-{env}"]).hsl.h * 360
            for env in ("production", "development", "experimental")
        }
        assert hue["production"] < 20 or hue["production"] > 340, (theme.name, hue)
        assert 70 <= hue["development"] <= 240, (theme.name, hue)
        assert 260 <= hue["experimental"] <= 335, (theme.name, hue)


# --------------------------------------------------------------------------- contrast


def test_contrast_ratio_matches_wcag_reference_values() -> None:
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#ffffff", "#ffffff") == pytest.approx(1.0)
    assert contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast_ratio("#ffffff", "#777777") == contrast_ratio("#777777", "#ffffff")


def test_theme_pairs_cover_what_the_ui_draws() -> None:
    labels = {label for label, _, _ in theme_pairs(load_themes()["control-room"])}
    for ground in ("background", "surface", "panel"):
        assert f"foreground on {ground}" in labels
    for name in ("primary", "secondary", "accent", "error", "warning", "success"):
        assert f"{name} on background" in labels
        assert f"{name} on surface" in labels
    assert "text on primary" in labels
    assert "footer-key-foreground on footer-background" in labels
    for env in (name for name in DEVSIM_VARIABLES if name.startswith("env-")):
        assert f"{env} on panel" in labels
        assert f"text on {env}" in labels
    assert "security-event on background" in labels and "security-event on surface" in labels


def test_high_contrast_passes_aaa_on_every_pair() -> None:
    theme = load_themes()["high-contrast"]
    failing = [
        (label, fg.hex, bg.hex, round(contrast_ratio(fg, bg), 2))
        for label, fg, bg in theme_pairs(theme)
        if contrast_ratio(fg, bg) < 7.0
    ]
    assert failing == []


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_builtin_passes_aa(name: str) -> None:
    ratio, label = min_contrast(load_themes()[name])
    assert ratio >= 4.5, f"{name}: {label} is only {ratio:.2f}:1"


def test_the_contrast_check_catches_a_bad_theme() -> None:
    """Grey on grey must fail, or the high-contrast test above proves nothing."""
    murky = Theme(
        name="murky",
        primary="#556677",
        foreground="#777777",
        background="#555555",
        surface="#5a5a5a",
        panel="#606060",
        error="#885555",
        variables=dict(VARIABLE_DEFAULTS),
    )
    ratio, label = min_contrast(murky)
    assert ratio < 4.5
    assert "foreground on background" in {
        pair for pair, fg, bg in theme_pairs(murky) if contrast_ratio(fg, bg) < 4.5
    }


def test_translucent_text_is_judged_as_drawn() -> None:
    """`text-muted` defaults to `auto 60%`: the pair is what it composites to, not opaque text."""
    theme = load_themes()["control-room"]
    pairs = {label: (fg, bg) for label, fg, bg in theme_pairs(theme)}
    muted, ground = pairs["text-muted on background"]
    text, _ = pairs["text on background"]
    assert contrast_ratio(muted, ground) < contrast_ratio(text, ground)


# --------------------------------------------------------------------------- user themes


MINIMAL = """
name: {name}
primary: "#ff00aa"
background: "#101010"
"""


def test_user_themes_come_from_the_xdg_config_dir(isolated_config: Path) -> None:
    assert config_dir() == isolated_config
    write(isolated_config / "themes", "mine.yaml", MINIMAL.format(name="mine"))
    write(isolated_config / "themes", "notes.txt", "not a theme")
    loaded = load_themes()
    assert BUILTINS <= set(loaded)
    assert loaded["mine"].primary == "#ff00aa"
    # Variables a user theme leaves out fall back to the defaults, so the CSS always parses.
    assert loaded["mine"].variables["env-production"] == VARIABLE_DEFAULTS["env-production"]


def test_user_dir_argument_and_missing_dir(tmp_path: Path) -> None:
    write(tmp_path / "elsewhere", "x.yml", MINIMAL.format(name="x"))
    assert "x" in load_themes(tmp_path / "elsewhere")
    assert set(load_themes(tmp_path / "does-not-exist")) >= BUILTINS


def test_a_user_theme_replaces_a_builtin_of_the_same_name(isolated_config: Path) -> None:
    write(isolated_config / "themes", "amber.yaml", MINIMAL.format(name="amber"))
    assert load_themes()["amber"].primary == "#ff00aa"


def test_two_user_files_with_one_name_is_an_error(isolated_config: Path) -> None:
    write(isolated_config / "themes", "a.yaml", MINIMAL.format(name="same"))
    write(isolated_config / "themes", "b.yaml", MINIMAL.format(name="same"))
    with pytest.raises(ConfigError, match=r"b\.yaml: name: theme 'same' is also defined in"):
        load_themes()


def test_config_dir_without_xdg_uses_platformdirs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setattr(themes.platformdirs, "user_config_dir", lambda *a, **k: "/cfg/devsim-tui")
    assert config_dir() == Path("/cfg/devsim-tui")


# --------------------------------------------------------------------------- errors


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_theme_file(path)
    return caught.value.problems


def test_unknown_key_says_file_line_and_did_you_mean(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "t.yaml",
        """
        name: t
        primary: "#123456"
        backgroud: "#000000"
        """,
    )
    assert problems_of(path) == [f"{path}:3: backgroud: unknown field, did you mean 'background'?"]


def test_bad_colour_says_file_line_and_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "t.yaml",
        """
        name: t
        dark: true
        primary: bleu
        """,
    )
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:3: primary: not a colour: 'bleu'; did you mean 'blue'?")


def test_bad_variables_point_at_their_own_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "t.yaml",
        """
        name: t
        primary: "#123456"
        variables:
          env-prodution: "#ff0000"
          env-development: "#zz0000"
          text-muted: "auto 60%"
        """,
    )
    problems = problems_of(path)
    assert problems[0] == (
        f"{path}:4: variables.env-prodution: unknown theme variable, "
        "did you mean 'env-production'?"
    )
    assert problems[1].startswith(f"{path}:5: variables.env-development: not a colour: '#zz0000'")
    assert len(problems) == 2


def test_env_variables_must_be_opaque(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "t.yaml",
        """
        name: t
        primary: "#123456"
        variables:
          env-production: "#ff000080"
          block-cursor-text-style: "#ffffff"
        """,
    )
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:3: variables: ")
    assert "env-production: expected a plain opaque colour" in problem
    assert "block-cursor-text-style: not a text style" in problem


def test_missing_primary_and_bad_name(tmp_path: Path) -> None:
    path = write(tmp_path, "t.yaml", 'name: "My Theme"\n')
    problems = problems_of(path)
    assert f"{path}:1: name: must match the pattern ^[a-z0-9][a-z0-9-]*$, got 'My Theme'" in (
        problems
    )
    assert f"{path}:1: primary: required field is missing" in problems


def test_yaml_syntax_error_has_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "t.yaml",
        """
        name: t
        primary: "#123456
        dark: true
        """,
    )
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:")
    line = int(problem.split(":")[1])
    assert line >= 2
    assert ": yaml: " in problem


def test_a_broken_user_theme_stops_load_themes_with_all_problems(isolated_config: Path) -> None:
    directory = isolated_config / "themes"
    write(directory, "a.yaml", 'name: a\nprimary: "#12"\n')
    write(directory, "b.yaml", "name: b\nprimary: red\nforegrond: white\n")
    with pytest.raises(ConfigError) as caught:
        load_themes()
    text = str(caught.value)
    assert f"{directory / 'a.yaml'}:2: primary: not a colour: '#12'" in text
    assert f"{directory / 'b.yaml'}:3: foregrond: unknown field, did you mean 'foreground'?" in text


def test_missing_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="file not found"):
        load_theme_file(tmp_path / "nope.yaml")


# --------------------------------------------------------------------------- remembering


def test_remember_round_trip(tmp_path: Path) -> None:
    directory = tmp_path / "cfg"
    assert remembered_theme(directory) is None
    assert remember_theme(directory, "amber") is True
    assert remembered_theme(directory) == "amber"
    assert remember_theme(directory, "daylight") is True
    assert remembered_theme(directory) == "daylight"
    assert [p.name for p in directory.iterdir()] == ["config.yaml"]  # no temp files left


def test_remember_defaults_to_the_xdg_config_dir(isolated_config: Path) -> None:
    remember_theme(None, "high-contrast")
    assert (isolated_config / "config.yaml").read_text(encoding="utf-8") == "theme: high-contrast\n"
    assert remembered_theme() == "high-contrast"


def test_remember_keeps_other_settings(tmp_path: Path) -> None:
    write(tmp_path, "config.yaml", "refresh_hz: 8\ntheme: amber\n")
    remember_theme(tmp_path, "daylight")
    text = (tmp_path / "config.yaml").read_text(encoding="utf-8")
    assert text == "refresh_hz: 8\ntheme: daylight\n"


@pytest.mark.parametrize(
    "content",
    [
        "theme: [unclosed\n",
        "- just\n- a list\n",
        "theme: 42\n",
        "theme: ''\n",
        "",
        b"\xff\xfe\x00garbage",
    ],
)
def test_a_corrupt_config_is_ignored(tmp_path: Path, content: str | bytes) -> None:
    path = tmp_path / "config.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    assert remembered_theme(tmp_path) is None
    assert remember_theme(tmp_path, "amber") is True
    assert remembered_theme(tmp_path) == "amber"


def test_a_corrupt_config_is_moved_aside_not_destroyed(tmp_path: Path) -> None:
    write(tmp_path, "config.yaml", "theme: [unclosed\n")
    remember_theme(tmp_path, "amber")
    assert (tmp_path / "config.yaml.bak").read_text(encoding="utf-8") == "theme: [unclosed\n"


def test_a_config_that_is_not_a_regular_file_is_refused_unread(tmp_path: Path) -> None:
    """A FIFO in place of config.yaml would block the first frame forever if it were opened
    for reading; it is refused (non-blocking open, then fstat) and the theme still saved."""
    os.mkfifo(tmp_path / "config.yaml")
    assert remembered_theme(tmp_path) is None
    assert remember_theme(tmp_path, "amber") is True
    assert remembered_theme(tmp_path) == "amber"


def test_an_alias_bomb_config_is_refused(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    write(tmp_path, "config.yaml", "\n".join(lines) + "\ntheme: amber\n")
    assert remembered_theme(tmp_path) is None


def test_an_unwritable_config_dir_does_not_raise(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    assert remember_theme(blocker / "sub", "amber") is False  # a file where the dir should be


def test_the_module_does_not_import_the_engine() -> None:
    import subprocess
    import sys

    code = (
        "import sys, devsim_tui.ui.themes; "
        "print(sorted(m for m in sys.modules if m.startswith('devsim_tui.sim')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# --------------------------------------------------------------------------- first frame


def test_first_frame_theme_equals_the_validated_one(tmp_path: Path) -> None:
    """The control room's first frame reads a shipped theme without the schema; it must be the
    very theme validation gives (the validated ones are registered right after)."""
    empty = tmp_path / "themes"
    validated = load_themes(user_dir=empty)
    for name in BUILTINS:
        assert themes.first_frame_theme(name, user_dir=empty) == validated[name]
    assert themes.first_frame_theme("nonesuch", user_dir=empty) is None


def test_first_frame_theme_defers_to_user_themes(tmp_path: Path) -> None:
    """A user file may replace a built-in, and only validation can tell: no shortcut then."""
    user = tmp_path / "themes"
    write(user, "mine.yaml", """
        name: control-room
        primary: "#123456"
    """)
    assert themes.first_frame_theme("control-room", user_dir=user) is None
    assert load_themes(user_dir=user)["control-room"].primary == "#123456"
