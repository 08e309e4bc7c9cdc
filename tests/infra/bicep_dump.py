"""Print every infra/**/*.bicep file parsed by pycep as one JSON object (run in .venv-infra)."""

import json
import sys
from pathlib import Path

from pycep import BicepParser


def main(infra_dir: str) -> None:
    """Write {relative path: pycep tree} for each Bicep file under infra_dir to stdout."""
    root = Path(infra_dir)
    parser = BicepParser()
    trees = {
        path.relative_to(root).as_posix(): parser.parse(file_path=path)
        for path in sorted(root.rglob("*.bicep"))
    }
    json.dump(trees, sys.stdout, default=str)


if __name__ == "__main__":
    main(sys.argv[1])
