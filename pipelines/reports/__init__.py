"""Evaluation reports (HTML and CSV) generated as background jobs."""
