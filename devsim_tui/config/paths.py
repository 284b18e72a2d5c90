"""Where shipped data files live, and which profile names are built in.

Standard library only, so the control room can tell a built-in profile from a path before its
first frame without importing the schema (pydantic); `devsim_tui.config.loader` re-exports these.
"""

from __future__ import annotations

import os
from pathlib import Path

from devsim_tui.errors import UserError

_PACKAGE_DIR = Path(__file__).resolve().parent.parent

_YAML_SUFFIXES = (".yaml", ".yml")


def builtin_data_dir(kind: str) -> Path:
    """The directory of shipped data files of one kind (`profiles`, `themes`).

    An installed wheel carries them as `devsim_tui/_data/<kind>` (pyproject force-includes them);
    a source checkout, editable install included, has them at the repository root.
    """
    installed = _PACKAGE_DIR / "_data" / kind
    if installed.is_dir():
        return installed
    checkout = _PACKAGE_DIR.parent / kind
    if checkout.is_dir():
        return checkout
    raise UserError(
        f"the built-in {kind} are missing from this installation "
        f"(looked in {installed} and {checkout}); reinstall devsim-tui"
    )


def builtin_profiles_dir() -> Path:
    """Where the built-in profiles live (see `builtin_data_dir`)."""
    return builtin_data_dir("profiles")


def list_builtin() -> list[str]:
    """Names of the built-in profiles, sorted."""
    return sorted(path.stem for path in builtin_profiles_dir().glob("*.yaml"))


def _looks_like_path(text: str) -> bool:
    return text.lower().endswith(_YAML_SUFFIXES) or "/" in text or os.sep in text


def is_builtin_profile(name: str | os.PathLike[str]) -> bool:
    """True when `name` names a built-in profile (not a path): `production`, ..."""
    if isinstance(name, os.PathLike) or _looks_like_path(str(name)):
        return False
    try:
        return str(name) in list_builtin()
    except UserError:
        return False
