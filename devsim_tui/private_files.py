"""Files that hold commands and user names (logs, recordings) are private: 0600 files in 0700
directories, whatever the umask (`umask 022` would make them world-readable).

Only files and directories this program creates or rewrites are changed; a character device
such as /dev/null or a FIFO given as the path is written to as it is.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO

FILE_MODE = 0o600
DIR_MODE = 0o700


def open_private(path: str | os.PathLike[str], mode: str = "w", *,
                 encoding: str = "utf-8") -> IO[str]:
    """`open(path, mode)` for text ("w" truncates, "a" appends) with the file made 0600: a new
    file is created with that mode (never readable by others, not even for a moment), an
    existing regular file is set to it."""
    if mode not in ("w", "a"):
        raise ValueError(f"mode {mode!r}: only 'w' or 'a'")
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if mode == "w" else os.O_APPEND)
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            try:
                os.fchmod(fd, FILE_MODE)  # the umask may have taken bits away, or it existed
            except PermissionError:
                pass  # someone else's file we may write to: its mode is theirs to set
        return os.fdopen(fd, mode, encoding=encoding)
    except BaseException:
        os.close(fd)
        raise


def make_private_dir(path: str | os.PathLike[str]) -> Path:
    """`mkdir -p path` with the last directory 0700 when this call creates it (an existing
    directory is left as its owner set it)."""
    path = Path(path)
    if path.is_dir():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=DIR_MODE)
    except FileExistsError:
        if not path.is_dir():
            raise
        return path
    os.chmod(path, DIR_MODE)  # mkdir's mode is filtered by the umask
    return path
