"""SIGINT, SIGTERM and SIGHUP as a stop request the main thread can wait for without deadlock."""

from __future__ import annotations

import contextlib
import os
import select
import signal
from types import FrameType, TracebackType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    """Records the first stop signal and wakes a waiting main thread through a pipe.

    The handler only stores the signal number and writes one byte to a non-blocking pipe. It
    takes no lock, so it cannot deadlock with the code it interrupts: `threading.Event.set()` in
    a handler can, because the interrupted `Event.wait()` on the same thread may hold the
    Event's lock. Install from the main thread (Python runs handlers there only).
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._previous: dict[int, object] = {}

    def install(self) -> StopSignals:
        """Handle SIGINT, SIGTERM and SIGHUP from now on; returns self."""
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
        with contextlib.suppress(OSError):
            # A full pipe means a wake-up is already pending: nothing is lost.
            os.write(self._write_fd, b"\0")

    @property
    def requested(self) -> bool:
        """True once a stop signal arrived."""
        return self.received is not None

    @property
    def name(self) -> str:
        """The received signal's name (SIGTERM, ...), or "" before one arrived."""
        return signal.Signals(self.received).name if self.received is not None else ""

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to `timeout` seconds (None: for ever) for a stop signal; True once one came."""
        if self.received is None:
            # A signal between the check and select() left a byte in the pipe: no lost wake-up.
            select.select([self._read_fd], [], [], timeout)
        return self.received is not None

    def restore(self) -> None:
        """Put the previous handlers back and close the pipe."""
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)  # type: ignore[arg-type]
        self._previous.clear()
        for fd in (self._read_fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> StopSignals:
        return self.install()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.restore()
