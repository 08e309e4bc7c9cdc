"""Child process: a warm sender that runs batches on request and reports CPU and latencies.

`python -P bench/warm_worker.py ours|floor|peer|ours-sendmail`: after setting up and warming
up it prints "ready", then for each stdin line N it sends N mails one after another and prints
one JSON line {cpuSeconds, seconds, latencies}. An empty line or EOF ends it.
"""

import json
import sys
import time

WARM_UP = 20


def main() -> None:
    from bench.senders import MAKERS, make_ours

    variant = sys.argv[1]
    # saveToSentItems false takes our one-call path (sendMail), the floor's exact request.
    send = make_ours(saveToSentItems=False) if variant == "ours-sendmail" else MAKERS[variant]()
    for i in range(WARM_UP):
        send(f"warm-up {i}")
    print("ready", flush=True)
    for line in sys.stdin:
        if not line.strip():
            break
        count = int(line)
        latencies = []
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for i in range(count):
            started = time.perf_counter()
            send(f"bench {i}")
            latencies.append(time.perf_counter() - started)
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        result = {"cpuSeconds": cpu, "seconds": wall, "latencies": latencies}
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
