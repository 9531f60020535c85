"""Scheduler tests: sweeps with a fixed clock."""
