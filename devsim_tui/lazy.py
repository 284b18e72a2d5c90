"""Modules imported on first use, so the control room's first frame does not wait for them.

`lazy_module("numpy")` returns a stand-in whose attribute lookups import the module (through
`importlib.import_module`, so the import lock makes it safe from any thread) and read from it.
The stand-in never caches the module on itself: after the first import each lookup is one
`sys.modules` hit, which the frame-rate code paths that use it can afford.

Used for what the first frame does not need: numpy, the pydantic command models and the panes.
Standard library only (the engine may use it too).
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any


class LazyModule:
    """A module imported when one of its attributes is first read."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def load(self) -> ModuleType:
        module = sys.modules.get(self._name)
        return module if module is not None else importlib.import_module(self._name)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.load(), attr)

    def __repr__(self) -> str:
        loaded = "loaded" if self._name in sys.modules else "not loaded yet"
        return f"<lazy module {self._name!r} ({loaded})>"


def lazy_module(name: str) -> Any:
    """A stand-in for module `name`, imported on first attribute access."""
    return LazyModule(name)
