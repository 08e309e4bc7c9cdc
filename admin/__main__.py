"""`python -m admin ...`: see admin.cli."""

import sys

from admin.cli import main

sys.exit(main())
