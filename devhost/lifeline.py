"""Children that die with their parent: Linux's PR_SET_PDEATHSIG, set between fork and exec."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


# Resolved once here: the preexec function must not load libraries in the forked child.
_prctl = _load_prctl()


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` after which the child gets `sig` when this process dies, even by SIGKILL.

    None where the platform has no prctl (then children outlive a killed parent). Linux sends
    the signal when the *thread* that started the child ends, so start children from a thread
    that outlives them, such as the main thread. The signal survives exec (not for set-user-ID
    programs). If this process died between fork and prctl, the child ends before it execs.
    """
    if _prctl is None:
        return None
    prctl, parent, number = _prctl, os.getpid(), int(sig)

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, number, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec
