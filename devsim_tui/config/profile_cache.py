"""A per-user cache of validated shipped files (the built-in profiles and their alert rules), so
a start need not validate them again.

Validating a built-in profile is most of what loading it costs: pydantic builds the profile's
validators (each start, from scratch) and checks every field. The built-ins are shipped data and
the same on every start, so the first start stores the validated model and later ones read it
back (about 0.2 ms instead of about 40 ms), as Python keeps compiled bytecode beside the source.
The built-in alert rule files are kept the same way.

An entry is found by a SHA-256 over everything the result depends on: the file's bytes, the model
it was validated as, the sources of the modules that define and check it (every module of the
config package, the model's own module and any its validators call into), and the versions of
devsim-tui, Python and pydantic. Change any of them and the entry is not found; the file is validated and
stored again. Entries are written atomically, readable by their owner only, in
`$XDG_CACHE_HOME/devsim-tui/profiles` (else `~/.cache/...`); one that is unreadable, not the
user's own, or not of the expected model is ignored. `DEVSIM_TUI_NO_CACHE=1` turns the cache off.
Only ever used for shipped files with no overrides: a user's own file is always read and
validated, so its errors name file and line.

Standard library only (pickle): a cache hit imports neither PyYAML nor the validators.
Never imports the UI.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Any

#: Bumped when what an entry holds changes shape.
FORMAT = b"devsim-tui profile cache 1"
_CONFIG_DIR = Path(__file__).resolve().parent


def enabled() -> bool:
    return os.environ.get("DEVSIM_TUI_NO_CACHE", "").strip().lower() not in ("1", "true", "yes")


def cache_dir() -> Path:
    """`$XDG_CACHE_HOME/devsim-tui/profiles`, else `~/.cache/devsim-tui/profiles`."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    root = Path(base).expanduser() if base else Path.home() / ".cache"
    return root / "devsim-tui" / "profiles"


def _profile_model() -> type:
    from devsim_tui.config.schema import Profile

    return Profile


def sources(model: type, extra: tuple[str, ...] = ()) -> list[Path]:
    """The code a validated `model` depends on: every module of the config package (the schema,
    its number and duration types, clouds, the loaders, this one), the model's own module, and
    `extra` (modules its validators call into, e.g. the PromQL parser for alert rules)."""
    own = sys.modules[model.__module__].__file__ or ""
    return [*sorted(_CONFIG_DIR.glob("*.py")), Path(own), *(Path(p) for p in extra)]


@functools.lru_cache(maxsize=None)
def _code_digest(model: type, extra: tuple[str, ...]) -> bytes:
    """A digest of what validates `model` (read once per process: a start looks up and, on a
    miss, stores two entries, and the code does not change under a running process)."""
    import pydantic

    from devsim_tui import __version__

    digest = hashlib.sha256(FORMAT)
    for part in (__version__, pydantic.VERSION, sys.version, model.__module__,
                 model.__qualname__):
        digest.update(part.encode() + b"\0")
    for path in sources(model, extra):
        digest.update(os.fsencode(path.name) + b"\0" + path.read_bytes() + b"\0")
    return digest.digest()


def entry_key(raw: bytes, model: type | None = None, extra: tuple[str, ...] = ()) -> str:
    """The entry's name: a digest of the file's bytes and of what validated it (`model`, by
    default the profile, and the code in `sources`)."""
    return hashlib.sha256(_code_digest(model or _profile_model(), tuple(extra)) + raw).hexdigest()


def load(raw: bytes, model: type | None = None, extra: tuple[str, ...] = ()) -> Any | None:
    """The validated `model` (by default the profile) stored for these bytes, or None (not
    stored, or not usable)."""
    if not enabled():
        return None
    model = model or _profile_model()
    try:
        path = cache_dir() / f"{entry_key(raw, model, extra)}.pickle"
        with open(path, "rb") as fh:
            info = os.fstat(fh.fileno())
            # Only an entry this user wrote and nobody else can change: unpickling runs code.
            if info.st_uid != os.getuid() or info.st_mode & 0o022:
                return None
            value = pickle.load(fh)
    except Exception:  # noqa: BLE001 - no entry, a partial one, another layout: validate instead
        return None
    return value if isinstance(value, model) else None


def store(raw: bytes, value: Any, extra: tuple[str, ...] = ()) -> None:
    """Keep a validated model for the next start (best effort: a read-only home is fine)."""
    if not enabled():
        return
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / f"{entry_key(raw, type(value), extra)}.pickle"
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".pickle")
        try:
            with os.fdopen(fd, "wb") as fh:  # mkstemp: mode 0600
                pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except Exception:  # noqa: BLE001 - best effort: a read-only home, a value pickle refuses
        pass
