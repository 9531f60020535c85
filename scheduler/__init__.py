"""Timed work: APScheduler 3 triggers idempotent sweeps; the database says what is due."""
