"""Argument types for command-line flags shared by several commands (standard library only, so
parsing the command line stays as cheap as before)."""

from __future__ import annotations

import argparse

MAX_SEED = 2**63 - 1  # what numpy's generators take (config.numbers.MAX_SEED)


def seed(text: str) -> int:
    """`--seed N`: a whole number from 0 to 2**63-1 (numpy refuses the others mid-start)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed is a whole number from 0 to 2**63-1, got "
                                         f"{text if len(text) <= 30 else text[:27] + '...'}")
    return value
