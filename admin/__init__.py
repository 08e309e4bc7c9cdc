"""Admin command line for connections: `python -m admin connections add|list|show|...`."""
