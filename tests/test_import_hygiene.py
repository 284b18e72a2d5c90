"""The import contracts of pyproject.toml hold (also run first by `make test`): the engine never
reaches the UI, and each layer (cmd > serve > ui > bridge > export > notify > drill > sim >
detect > config) imports only the ones below it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from helpers import REPO


def test_lint_imports_keeps_every_contract():
    exe = Path(sys.executable).with_name("lint-imports")
    command = [str(exe)] if exe.exists() else [shutil.which("lint-imports") or "lint-imports"]
    r = subprocess.run(command + ["--no-cache"], capture_output=True, text=True, cwd=REPO,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout


def test_the_layers_contract_is_declared():
    text = (REPO / "pyproject.toml").read_text()
    assert "include_external_packages = true" in text
    assert 'type = "layers"' in text
