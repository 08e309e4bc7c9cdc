"""Stop signals: the first one is recorded and wakes a waiting main thread through a pipe."""

from __future__ import annotations

import os
import signal
import threading

from devhost.stop_signals import StopSignals


def test_the_first_stop_signal_is_recorded_and_wakes_the_waiter():
    previous = signal.getsignal(signal.SIGHUP)
    with StopSignals() as stop:
        assert not stop.wait(0)
        threading.Timer(0.1, os.kill, args=(os.getpid(), signal.SIGHUP)).start()
        assert stop.wait(10)
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(0)
        assert (stop.requested, stop.name) == (True, "SIGHUP")
    assert signal.getsignal(signal.SIGHUP) is previous
