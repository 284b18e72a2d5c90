"""Colour themes for the control room: YAML data, validated, then registered as Textual Themes.

Themes are files, not code. The built-ins ship in the repository's `themes/` directory (in the
wheel as `devsim_tui/_data/themes`, found through `builtin_data_dir`); a user adds or overrides
themes by dropping `*.yaml` files into `<config_dir>/themes/`. Each file is read with line
numbers and validated against `ThemeFile`, so a mistake is reported as
`FILE:LINE: field.path: message` (`themes/mine.yaml:3: primary: not a colour: 'bleu'`) exactly as
profile and scenario files are.

Besides Textual's own colour slots, every theme defines the devsim CSS variables listed in
`DEVSIM_VARIABLES` (the environment cue in the header: `$env-production`, `$env-development`,
`$env-experimental`; `$security-event`, the event log's colour for security events). Textual
merges `Theme.variables` into the CSS variables of the running app, so `.tcss` can use them;
the app should also return `VARIABLE_DEFAULTS` from `App.get_theme_variable_defaults` so that
switching to one of Textual's own themes (which know nothing of these variables) does not break
the stylesheet.

The chosen theme is remembered in `<config_dir>/config.yaml` (`theme: NAME`), written atomically
and ignored when unreadable, since a broken preference must never stop the control room opening.

`contrast_ratio` and `theme_pairs` let tests hold the accessible themes to WCAG contrast.

This module must never import the simulation engine (`devsim_tui.sim`): themes are presentation.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs
import yaml
from textual.color import Color
from textual.theme import Theme

from devsim_tui.config.paths import builtin_data_dir
from devsim_tui.errors import ConfigError, UserError

if TYPE_CHECKING:
    from textual.app import App

__all__ = [
    "DEFAULT_THEME",
    "DEVSIM_VARIABLES",
    "VARIABLE_DEFAULTS",
    "ThemeFile",
    "builtin_themes_dir",
    "config_dir",
    "contrast_ratio",
    "load_theme_file",
    "load_themes",
    "min_contrast",
    "register_themes",
    "remember_theme",
    "remembered_theme",
    "theme_pairs",
]

#: The theme used when none was chosen or the remembered one no longer exists.
DEFAULT_THEME = "control-room"

APP_NAME = "devsim-tui"
CONFIG_FILE = "config.yaml"
#: The preferences file holds a theme name: a megabyte is far more than any real one needs.
CONFIG_MAX_BYTES = 1024 * 1024
THEMES_SUBDIR = "themes"
_YAML_SUFFIXES = (".yaml", ".yml")
#: `COLOUR N%`: a colour with an opacity, as Textual's CSS variables accept it.
_ALPHA_SUFFIX = re.compile(r"^(?P<colour>.+?)\s+(?P<alpha>\d{1,3}(?:\.\d+)?)%$")

#: The CSS variables devsim adds to Textual's, with what each one colours.
DEVSIM_VARIABLES: dict[str, str] = {
    "env-production": "header cue for a production estate: unmistakably red",
    "env-development": "header cue for a development estate: calm green or blue",
    "env-experimental": "header cue for an experimental estate: violet or magenta",
    "security-event": "event-log text of security events: apart from the severity colours",
}

#: Fallbacks for `App.get_theme_variable_defaults`: mid-tones readable on dark and light
#: backgrounds alike, because Textual's own themes do not define these variables.
VARIABLE_DEFAULTS: dict[str, str] = {
    "env-production": "#d9363e",
    "env-development": "#2f9e6e",
    "env-experimental": "#9b59d0",
    "security-event": "#c026d3",
}

# --------------------------------------------------------------------------- loading


def builtin_themes_dir() -> Path:
    """Where the shipped themes live (a checkout's `themes/` or the wheel's `_data/themes`)."""
    return builtin_data_dir(THEMES_SUBDIR)


def config_dir() -> Path:
    """The user's devsim configuration directory.

    `$XDG_CONFIG_HOME/devsim-tui` when that variable is set (also on macOS and Windows, so tests
    and users who set it get what they asked for), else the platform's usual place.
    """
    xdg = os.environ.get("XDG_CONFIG_HOME", "").strip()
    if xdg:
        return Path(xdg).expanduser() / APP_NAME
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def load_theme_file(path: str | os.PathLike[str]) -> Theme:
    """Read and validate one theme file; raise ConfigError/UserError naming file and line."""
    from devsim_tui.config.yamlsrc import load_yaml, validate
    from devsim_tui.ui.theme_schema import ThemeFile

    data, locator = load_yaml(path)
    return validate(ThemeFile, data, locator, path).to_theme()


def __getattr__(name: str) -> Any:
    if name == "ThemeFile":  # the schema module brings pydantic: imported when asked for
        from devsim_tui.ui.theme_schema import ThemeFile

        return ThemeFile
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def first_frame_theme(name: str, user_dir: Path | None = None) -> Theme | None:
    """A shipped theme read straight from its file, without the schema, for the first frame.

    None unless `name` is a built-in and no user theme files exist (one might replace it, and
    only validation can tell). A shipped file is data the test-suite validates, and the result
    equals `load_theme_file`'s for it (a test holds the two to it); the app registers the
    validated themes once its start-up worker has loaded them.
    """
    directory = config_dir() / THEMES_SUBDIR if user_dir is None else Path(user_dir)
    if directory.is_dir() and _theme_files(directory):
        return None
    path = builtin_themes_dir() / f"{name}.yaml"
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(data, dict) or data.get("name") != name:
        return None
    fields = {k: v for k, v in data.items() if k not in ("description", "variables")}
    try:
        return Theme(**fields, variables={**VARIABLE_DEFAULTS, **(data.get("variables") or {})})
    except TypeError:
        return None


_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _theme_files(directory: Path) -> list[Path]:
    return sorted(
        path
        for path in directory.iterdir()
        if path.suffix.lower() in _YAML_SUFFIXES and path.is_file()
    )


def _load_directory(directory: Path) -> tuple[dict[str, tuple[Theme, Path]], list[str]]:
    """Every theme of a directory, and all problems of all its files (so one pass fixes all)."""
    themes: dict[str, tuple[Theme, Path]] = {}
    problems: list[str] = []
    for path in _theme_files(directory):
        try:
            theme = load_theme_file(path)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        except UserError as exc:
            problems.append(str(exc))
            continue
        if theme.name in themes:
            problems.append(
                f"{path}: name: theme '{theme.name}' is also defined in {themes[theme.name][1]}"
            )
            continue
        themes[theme.name] = (theme, path)
    return themes, problems


def load_themes(user_dir: Path | None = None) -> dict[str, Theme]:
    """The built-in themes plus the user's, by name, built-ins first.

    `user_dir` is the directory of user theme files, by default `<config_dir()>/themes`; it may
    not exist. A user theme with a built-in's name replaces it (that is how a user adjusts a
    built-in). Any broken user file raises one ConfigError listing every problem found.
    """
    builtins, problems = _load_directory(builtin_themes_dir())
    if problems:  # a broken shipped theme is a packaging bug: fail loudly, not per user
        raise ConfigError(problems)
    themes = {name: theme for name, (theme, _) in builtins.items()}
    directory = config_dir() / THEMES_SUBDIR if user_dir is None else Path(user_dir)
    if directory.is_dir():
        users, problems = _load_directory(directory)
        if problems:
            raise ConfigError(problems)
        themes.update({name: theme for name, (theme, _) in users.items()})
    return themes


def register_themes(app: App[Any], themes: Mapping[str, Theme] | None = None) -> dict[str, Theme]:
    """Register `themes` (default: `load_themes()`) with `app`; returns what was registered."""
    chosen = dict(load_themes() if themes is None else themes)
    for theme in chosen.values():
        app.register_theme(theme)
    return chosen


# --------------------------------------------------------------------------- remembering


def _config_path(directory: Path | None) -> Path:
    return (config_dir() if directory is None else Path(directory)) / CONFIG_FILE


def _read_config(path: Path) -> dict[str, Any] | None:
    """The config mapping, `{}` when there is no file, None when it exists but is unusable.

    Read like every other file the product reads (`config.yamlsrc`): only a regular file of
    at most CONFIG_MAX_BYTES, bounded nesting and alias expansion - a FIFO or /dev/zero put in
    its place must not hang or exhaust the control room at startup.
    """
    if not os.path.lexists(path):
        return {}
    # The line-numbered reader brings pydantic: not for a start without a preferences file.
    from devsim_tui.config.yamlsrc import parse_yaml, read_text_file

    try:
        data, _ = parse_yaml(read_text_file(path, "devsim-tui config file", CONFIG_MAX_BYTES),
                             os.fspath(path))
    except (UserError, ConfigError):
        return None
    if data is None:
        return {}
    return data if isinstance(data, dict) else None


def remembered_theme(config_dir: Path | None = None) -> str | None:
    """The theme name saved by `remember_theme`, or None (no file, corrupt file, no `theme:`).

    Whether that theme still exists is for the caller to check against the loaded themes.
    """
    data = _read_config(_config_path(config_dir))
    theme = data.get("theme") if data else None
    return theme if isinstance(theme, str) and theme.strip() else None


def remember_theme(config_dir: Path | None, name: str) -> bool:
    """Save `name` as the `theme:` of `<config_dir>/config.yaml`; True if it was written.

    Other keys of the file are kept. The file is replaced atomically, so a crash mid-write
    leaves the old one intact. An unparsable file is moved aside to `config.yaml.bak` rather
    than silently destroyed. Failing to write (read-only home...) returns False instead of
    raising: losing a preference must not take the control room down.
    """
    path = _config_path(config_dir)
    data = _read_config(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is None:
            os.replace(path, path.with_name(path.name + ".bak"))
            data = {}
        data["theme"] = name
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{CONFIG_FILE}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError:
        return False
    return True


# --------------------------------------------------------------------------- contrast


def _linear(channel: int) -> float:
    value = channel / 255
    return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4


def _relative_luminance(colour: Color) -> float:
    r, g, b = colour.rgb
    return 0.2126 * _linear(r) + 0.7152 * _linear(g) + 0.0722 * _linear(b)


def contrast_ratio(c1: Color | str, c2: Color | str) -> float:
    """WCAG 2.x contrast ratio of two opaque colours, from 1.0 (same) to 21.0 (black/white).

    Alpha is ignored: composite translucent colours over what is beneath them first.
    """
    l1 = _relative_luminance(Color.parse(c1))
    l2 = _relative_luminance(Color.parse(c2))
    lighter, darker = max(l1, l2), min(l1, l2)
    return (lighter + 0.05) / (darker + 0.05)


def _resolve(value: str, under: Color) -> Color:
    """An opaque colour for a CSS variable value as Textual draws it over `under`."""
    text = value.strip()
    alpha = 1.0
    match = _ALPHA_SUFFIX.match(text)
    if match:
        text, alpha = match["colour"], float(match["alpha"]) / 100
    if text == "auto":
        # Textual's `auto` picks black or white text against what is underneath.
        colour = under.get_contrast_text(alpha)
    else:
        colour = Color.parse(text)
        colour = colour.with_alpha(colour.a * alpha)
    return under + colour


def theme_pairs(theme: Theme) -> list[tuple[str, Color, Color]]:
    """The text-on-background pairs the control room draws, as `(label, text, background)`.

    Colours are resolved the way Textual would draw them (derived panel, `auto` text, opacity
    composited over the colour beneath), so the contrast of each pair is what the eye gets.
    """
    generated = {**theme.to_color_system().generate(), **theme.variables}
    background = Color.parse(generated["background"]).with_alpha(1.0)

    def colour(name: str, under: Color = background) -> Color:
        return _resolve(generated[name], under)

    grounds = {name: colour(name) for name in ("background", "surface", "panel")}
    pairs: list[tuple[str, Color, Color]] = []

    def add(text: str, ground_name: str, ground: Color) -> None:
        pairs.append((f"{text} on {ground_name}", colour(text, ground), ground))

    for ground_name, ground in grounds.items():
        add("foreground", ground_name, ground)
        add("text", ground_name, ground)
        add("text-muted", ground_name, ground)
    for ground_name in ("background", "surface"):
        ground = grounds[ground_name]
        for name in ("primary", "secondary", "accent", "error", "warning", "success"):
            add(name, ground_name, ground)
            add(f"text-{name}", ground_name, ground)
    # The header shows the environment cue as coloured text on the panel and as a badge.
    for env in (name for name in DEVSIM_VARIABLES if name.startswith("env-")):
        add(env, "panel", grounds["panel"])
        add(env, "background", grounds["background"])
        badge = colour(env)
        pairs.append((f"text on {env}", _resolve(generated["text"], badge), badge))
    # Security events in the event log (on the background) and in a finding's detail.
    for ground_name in ("background", "surface"):
        add("security-event", ground_name, grounds[ground_name])
    primary = colour("primary")
    pairs.append(("text on primary", _resolve(generated["text"], primary), primary))
    footer = colour("footer-background")
    for name in ("footer-key-foreground", "footer-description-foreground", "footer-foreground"):
        key_ground = (
            _resolve(generated["footer-key-background"], footer)
            if name == "footer-key-foreground"
            else footer
        )
        pairs.append((f"{name} on footer-background", colour(name, key_ground), key_ground))
    cursor = colour("block-cursor-background")
    pairs.append(
        (
            "block-cursor-foreground on block-cursor-background",
            colour("block-cursor-foreground", cursor),
            cursor,
        )
    )
    return pairs


def min_contrast(theme: Theme) -> tuple[float, str]:
    """The lowest contrast ratio among `theme_pairs(theme)` and the pair that has it."""
    return min((contrast_ratio(fg, bg), label) for label, fg, bg in theme_pairs(theme))
