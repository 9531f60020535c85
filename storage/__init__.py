"""Storage: SQLModel models and keyword-only data-access functions. Imports nothing of ours."""
