"""A child process in its own pseudo-terminal, driven from asyncio: bytes in, bytes out, resize.

The child is the session leader of a fresh session with the pty slave as its controlling
terminal, exactly as if a user had logged in on it: resizing the pty (TIOCSWINSZ) makes the
kernel send it SIGWINCH, and ending the seat hangs the terminal up (SIGHUP to its process group).
Reading pauses when the consumer says so (an SSH channel whose client is slow), so a fast
redrawing app can never fill the server's memory.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import signal
import struct
import termios
from collections.abc import Callable, Mapping, Sequence

READ_CHUNK = 65536


def set_winsize(fd: int, cols: int, rows: int, px_width: int = 0, px_height: int = 0) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ,
                struct.pack("HHHH", max(1, rows), max(1, cols), px_width, px_height))


def _become_terminal_owner() -> None:
    """In the child before exec: own a new session whose controlling terminal is stdin (the
    slave). Without a controlling terminal there would be no SIGWINCH and no hang-up."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    # A server started under `nohup` (or any parent ignoring SIGHUP) would pass that on: the
    # seat could then not be hung up and would only end by SIGKILL, its terminal left raw.
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


class PtyChild:
    """`argv` running in a pty of `cols` x `rows`; output goes to `on_output`, the exit status
    to `on_exit` once the output is drained."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], cols: int, rows: int,
                 on_output: Callable[[bytes], None], on_exit: Callable[[int], None]) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.cols, self.rows = cols, rows
        self.on_output = on_output
        self.on_exit = on_exit
        self.proc: asyncio.subprocess.Process | None = None
        self._master = -1
        self._reading = False
        self._paused = False
        self._out_eof = asyncio.Event()
        self._pending_input = bytearray()
        self._waiter: asyncio.Task | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    async def start(self) -> None:
        master, slave = os.openpty()
        try:
            set_winsize(slave, self.cols, self.rows)
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=slave, stdout=slave, stderr=slave, env=self.env,
                preexec_fn=_become_terminal_owner, close_fds=True)
        except BaseException:
            os.close(master)
            raise
        finally:
            # Only the child keeps the slave open, so its exit shows up as EIO on the master.
            os.close(slave)
        os.set_blocking(master, False)
        self._master = master
        self._start_reading()
        self._waiter = asyncio.get_running_loop().create_task(self._wait())

    # ------------------------------------------------------------------ output

    def _start_reading(self) -> None:
        if not self._reading and self._master >= 0 and not self._out_eof.is_set():
            asyncio.get_running_loop().add_reader(self._master, self._readable)
            self._reading = True

    def _stop_reading(self) -> None:
        if self._reading:
            asyncio.get_running_loop().remove_reader(self._master)
            self._reading = False

    def _readable(self) -> None:
        try:
            data = os.read(self._master, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:  # EIO: every slave descriptor is closed, the child is gone
            if exc.errno not in (errno.EIO, errno.EBADF):
                raise
            data = b""
        if not data:
            self._stop_reading()
            self._out_eof.set()
            return
        self.on_output(data)

    def pause_reading(self) -> None:
        self._paused = True
        self._stop_reading()

    def resume_reading(self) -> None:
        self._paused = False
        self._start_reading()

    # ------------------------------------------------------------------ input

    def write(self, data: bytes) -> None:
        if self._master < 0 or not data:
            return
        if self._pending_input:
            self._pending_input += data
            return
        try:
            n = os.write(self._master, data)
        except BlockingIOError:
            n = 0
        except OSError:
            return  # the child is gone; its exit ends the seat
        if n < len(data):
            # The child is not reading (busy, or stopped): queue and write when it drains.
            self._pending_input += data[n:]
            asyncio.get_running_loop().add_writer(self._master, self._writable)

    def _writable(self) -> None:
        try:
            n = os.write(self._master, self._pending_input)
        except BlockingIOError:
            return
        except OSError:
            n = len(self._pending_input)
        del self._pending_input[:n]
        if not self._pending_input:
            asyncio.get_running_loop().remove_writer(self._master)

    def resize(self, cols: int, rows: int, px_width: int = 0, px_height: int = 0) -> None:
        self.cols, self.rows = cols, rows
        if self._master >= 0:
            set_winsize(self._master, cols, rows, px_width, px_height)

    # ------------------------------------------------------------------ lifetime

    async def _wait(self) -> None:
        assert self.proc is not None
        status = await self.proc.wait()
        # Deliver what the child wrote last (its terminal restore sequences) before saying it
        # ended; a grandchild holding the pty open must not keep the seat alive, hence the cap.
        if self._paused:
            self.resume_reading()
        try:
            await asyncio.wait_for(self._out_eof.wait(), 1.0)
        except asyncio.TimeoutError:
            pass
        self._close_master()
        self.on_exit(status)

    def _close_master(self) -> None:
        if self._master < 0:
            return
        loop = asyncio.get_running_loop()
        self._stop_reading()
        if self._pending_input:
            loop.remove_writer(self._master)
            self._pending_input.clear()
        os.close(self._master)
        self._master = -1

    def _signal_group(self, sig: int) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)  # the child leads its own session and group
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL the child's whole group at once (the server is closing)."""
        self._signal_group(signal.SIGKILL)

    async def terminate(self, grace: float = 2.0) -> None:
        """Hang up (SIGHUP, like a dropped line), then SIGKILL if it lingers past `grace`."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGHUP)
        try:
            await asyncio.wait_for(asyncio.shield(self.proc.wait()), grace)
        except asyncio.TimeoutError:
            self._signal_group(signal.SIGKILL)
            await self.proc.wait()
        if self._waiter is not None:
            await self._waiter
