"""Index a built function app package as the Python worker does; run with the package's own venv.

Usage: python -I package_index.py <package dir>. Prints one JSON document: every function's
binding metadata (what the worker sends the host), and which top-level modules were imported.
Kept free of any import from this repository, so it proves the package stands on its own.
"""

import json
import os
import sys


def main(package_dir: str) -> None:
    """Import function_app from package_dir, index it, print the result as JSON."""
    sys.path.insert(0, package_dir)
    os.chdir(package_dir)
    import function_app

    functions = {}
    for function in function_app.app.get_functions():
        functions[function.get_function_name()] = json.loads(function.get_function_json())
    top_level = sorted({name.split(".")[0] for name in sys.modules})
    json.dump({"functions": functions, "modules": top_level}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
