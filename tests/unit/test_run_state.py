"""The pid file of `make run`: who is still running, reused pids, and the busy-port line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from devhost.run_all import busy_ports_message, leftovers_message
from devhost.run_state import PidFile, RecordedProcess, process_start_time


def test_the_pid_file_records_processes_and_their_ports(tmp_path):
    pid_file = PidFile.in_state_dir(tmp_path)
    pid_file.start(os.getppid())
    pid_file.add("sandbox", os.getpid(), [8443])
    pid_file.set_ports(os.getpid(), [9443])

    names = [(p.name, p.ports) for p in pid_file.read()]
    assert names == [("run_all", []), ("sandbox", [9443])]
    assert [p.name for p in pid_file.running()] == ["run_all", "sandbox"]
    pid_file.remove()
    assert pid_file.read() == []


def test_an_unreadable_pid_file_names_nothing(tmp_path):
    pid_file = PidFile.in_state_dir(tmp_path)
    pid_file.path.write_text("{not json", encoding="utf-8")
    assert pid_file.running() == []


def test_an_ended_process_and_a_reused_pid_are_not_running():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    record = RecordedProcess("sandbox", child.pid, process_start_time(child.pid))
    assert record.is_running()
    child.kill()
    child.wait(10)
    assert not record.is_running()
    me = os.getpid()
    # Same pid, another start time: a different process that got a recorded pid.
    assert not RecordedProcess("sandbox", me, (process_start_time(me) or 0) + 1).is_running()
    assert not RecordedProcess("sandbox", 1 << 22).is_running()  # above any pid_max


def test_a_busy_port_is_one_line_naming_our_holder_and_what_to_do():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        ours = [RecordedProcess("sandbox", 4242, None, [port])]

        mine = busy_ports_message({"sandbox": port, "devhost": 0}, ours)
        theirs = busy_ports_message({"sandbox": 0, "devhost": port}, [])

    assert mine is not None and "\n" not in mine
    assert mine.startswith(
        f"make run: port {port} (sandbox) is held by the sandbox of an earlier run of this "
        "checkout (pid 4242): end it with `make stop`, or use other ports: SANDBOX_PORT="
    )
    assert mine.endswith(" DEVHOST_PORT=0 make run")
    assert theirs is not None
    assert theirs.startswith(f"make run: port {port} (devhost) is in use by another program: ")
    assert "stop that program" in theirs
    assert busy_ports_message({"sandbox": 0, "devhost": 0}, []) is None


def test_leftovers_are_named_in_one_line():
    line = leftovers_message([RecordedProcess("azurite", 7, None, [1, 2, 3])])
    assert line == (
        "make run: an earlier run of this checkout is still running (azurite (pid 7, ports "
        "1, 2, 3)) and uses its state; end it with `make stop`"
    )
