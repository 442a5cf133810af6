"""The registry aliases StreamFlow moves (MLflow aliases, never deprecated stages)."""

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous"
"""The champion before the last promotion: where a rollback returns to."""
ALIASES = (CHAMPION, CHALLENGER, PREVIOUS)
