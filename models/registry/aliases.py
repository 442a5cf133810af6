"""The registry aliases StreamFlow moves (MLflow aliases, never deprecated stages)."""

CHAMPION = "champion"
CHALLENGER = "challenger"
ALIASES = (CHAMPION, CHALLENGER)
