"""Idempotent create requests: the first response is kept and replayed to retries."""
