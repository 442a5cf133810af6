"""Background jobs: a table that is the queue and the dead-letter queue, retries as data."""
