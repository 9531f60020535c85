"""Process-level reliability suite: SIGKILL, database outages and platform faults."""
