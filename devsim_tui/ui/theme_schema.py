"""The theme file schema: `ThemeFile` (pydantic) and the checks behind its fields.

Imported when a theme file is validated (`themes.load_theme_file`), not for the control room's
first frame, which shows a shipped theme read without it (see `themes.first_frame_theme`).
"""

from __future__ import annotations

import difflib
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from textual.color import Color, ColorParseError
from textual.design import ColorSystem
from textual.theme import Theme

from devsim_tui.ui.themes import _ALPHA_SUFFIX, DEVSIM_VARIABLES, VARIABLE_DEFAULTS

# The variables Textual's design system generates; a theme may override any of them.
_TEXTUAL_VARIABLES: frozenset[str] = frozenset(ColorSystem(primary="#000000").generate()) | (
    frozenset(ColorSystem(primary="#000000", ansi=True).generate())
)

# Words Textual accepts in a `*-text-style` / `*-style` variable (link-style, ...).
_STYLE_WORDS = frozenset(
    "none not bold b dim d italic i underline u underline2 uu reverse r strike s blink "
    "blink2 overline o conceal".split()
)

_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]*$"


# --------------------------------------------------------------------------- colours


def _parse_colour(text: str) -> Color:
    """`Color.parse` with the message a theme author needs (and a did-you-mean for names)."""
    try:
        return Color.parse(text.strip())
    except ColorParseError as exc:
        message = f"not a colour: {text!r}"
        if exc.suggested_color:
            message += f"; did you mean '{exc.suggested_color}'?"
        message += " (use #rrggbb, rgb(r,g,b), hsl(h,s%,l%) or a colour name)"
        raise ValueError(message) from None


def _check_colour(value: str) -> str:
    _parse_colour(value)
    return value


def _check_css_colour(value: str) -> str:
    """A colour as Textual's CSS accepts it in a variable: `auto`, `COLOUR` or either + ` N%`."""
    text = value.strip()
    if text in ("auto", "initial"):
        return value
    match = _ALPHA_SUFFIX.match(text)
    if match:
        if float(match["alpha"]) > 100:
            raise ValueError(f"opacity must be at most 100%, got {value!r}")
        text = match["colour"]
        if text == "auto":
            return value
    _parse_colour(text)
    return value


def _is_plain_colour(value: str) -> bool:
    try:
        return _parse_colour(value).a == 1.0
    except ValueError:
        return False


def _check_variable_name(name: str) -> str:
    if name in DEVSIM_VARIABLES or name in _TEXTUAL_VARIABLES:
        return name
    # Strict on purpose: a misspelt variable would otherwise be silently unused and the
    # colour it meant to set would quietly stay at its default.
    known = sorted({*DEVSIM_VARIABLES, *_TEXTUAL_VARIABLES})
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f", did you mean '{close[0]}'?" if close else " (see DEVSIM_VARIABLES and Textual's)"
    raise ValueError(f"unknown theme variable{hint}")


def _is_style(value: str) -> bool:
    words = set(value.split())
    return bool(words) and words <= _STYLE_WORDS


def _check_variable_value(value: str) -> str:
    """Any value a Textual theme variable may hold: a CSS colour or text-style words."""
    if _is_style(value):
        return value
    return _check_css_colour(value)


ColourText = Annotated[str, AfterValidator(_check_colour)]
VariableName = Annotated[str, AfterValidator(_check_variable_name)]
VariableValue = Annotated[str, AfterValidator(_check_variable_value)]


class ThemeFile(BaseModel):
    """One theme file. Field names are those of `textual.theme.Theme`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_NAME_PATTERN, max_length=40)
    description: str | None = None
    dark: bool = True
    primary: ColourText
    secondary: ColourText | None = None
    accent: ColourText | None = None
    foreground: ColourText | None = None
    background: ColourText | None = None
    surface: ColourText | None = None
    panel: ColourText | None = None
    boost: ColourText | None = None
    warning: ColourText | None = None
    error: ColourText | None = None
    success: ColourText | None = None
    luminosity_spread: float = Field(default=0.15, ge=0, le=1)
    text_alpha: float = Field(default=0.95, ge=0, le=1)
    variables: dict[VariableName, VariableValue] = Field(default_factory=dict)

    @field_validator("variables")
    @classmethod
    def _variable_kinds(cls, variables: dict[str, str]) -> dict[str, str]:
        # Each value is already a colour or a style; here only the kind the name needs is checked
        # (the per-item checks above are the ones that can point at the value's own line).
        problems = []
        for name, value in variables.items():
            if name.endswith("style"):
                if not _is_style(value):
                    problems.append(f"{name}: not a text style: {value!r} (e.g. bold, none)")
            elif _is_style(value):
                problems.append(f"{name}: expected a colour, got the text style {value!r}")
            elif name in DEVSIM_VARIABLES and not _is_plain_colour(value):
                # Used both as text and as a badge background, so no `auto` and no opacity.
                problems.append(f"{name}: expected a plain opaque colour, got {value!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return variables

    def to_theme(self) -> Theme:
        """The Textual Theme, with every devsim variable present (defaults fill the gaps)."""
        variables = {**VARIABLE_DEFAULTS, **self.variables}
        fields = self.model_dump(exclude={"description", "variables"})
        return Theme(**fields, variables=variables)
