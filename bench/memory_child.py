"""Child process: peak RSS growth of one send with a big attachment; prints one JSON line.

`python -P bench/memory_child.py url SIZE` sends an attachment of SIZE bytes by URL (served by
the sandbox); `python -P bench/memory_child.py body FILE` sends the request body in FILE (a
base64 attachment inline). A small send first loads every import, token and pool, so the
growth is the attachment's cost alone. The body file is read before the baseline, as the stand-in
for the connection it arrives on; under HTTP streams the app reads it from there in 64 KiB
pieces, so holding the body once is part of the growth. The peak is reset
(Linux /proc/self/clear_refs) just before the baseline so that earlier transient peaks
(warm-up, reading the file) cannot hide the send's own peak. The peak is read from VmHWM, not
ru_maxrss: after fork + exec, ru_maxrss starts at the *parent's* peak (Linux keeps the larger
of the two in the signal struct), which hid the whole send when the parent was bigger.
"""

import json
import os
import sys


def reset_peak() -> None:
    """Make ru_maxrss start again from the current RSS (Linux: clear_refs 5 resets VmHWM)."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def peak_rss_bytes() -> int:
    """This process's peak resident set size (VmHWM) since start or the last reset_peak()."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmHWM missing from /proc/self/status (Linux only)")


def main() -> None:
    from bench.senders import make_ours

    kind, arg = sys.argv[1], sys.argv[2]
    url = os.environ["BENCH_SANDBOX_URL"]
    make_ours()("warm-up")
    if kind == "url":
        file_url = f"{url}/_sandbox/files/big.bin?size={int(arg)}&seed=1"
        attachment = {"name": "big.bin", "contentType": "application/octet-stream", "url": file_url}
        send = make_ours(attachments=[attachment])
        reset_peak()
        before = peak_rss_bytes()
        send(f"memory by URL {arg}")
    else:
        from bench.senders import send_raw_body

        with open(arg, "rb") as fh:
            body = fh.read()
        reset_peak()
        before = peak_rss_bytes()
        send_raw_body(body)
    after = peak_rss_bytes()
    print(json.dumps({"beforeBytes": before, "afterBytes": after}), flush=True)


if __name__ == "__main__":
    main()
