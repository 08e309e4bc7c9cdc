"""Child process: time one cold first send (or only the imports) and print one JSON line.

`python -P bench/cold_child.py send|import ours|floor|peer|base`; run by bench.cold_start.
Timing starts at this file's first statement: interpreter start-up (the same for every variant)
is left out, everything our code or a library does is in.
"""

import time

T0 = time.perf_counter()
C0 = time.process_time()

import json  # noqa: E402 - after the clock starts, on purpose
import sys  # noqa: E402

IMPORTS = {
    # What `import function_app` is compared against: the runtime's own minimum.
    "base": ("azure.functions", "msal", "requests"),
    "floor": ("msal", "requests"),
    "ours": ("function_app",),
    # The peer's function app would import these at the top, as the samples do.
    "peer": ("azure.functions", "msgraph", "azure.identity", "azure.keyvault.secrets"),
}


def main() -> None:
    mode, variant = sys.argv[1], sys.argv[2]
    if mode == "import":
        for name in IMPORTS[variant]:
            __import__(name)
        done = time.perf_counter()
        cpu = time.process_time()
    else:
        from bench.senders import MAKERS

        MAKERS[variant]()("cold start")
        done = time.perf_counter()
        cpu = time.process_time()
    result = {
        "variant": variant,
        "seconds": done - T0,
        "cpuSeconds": cpu - C0,
        "modules": len(sys.modules),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
