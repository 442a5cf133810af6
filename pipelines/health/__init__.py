"""Whether the platform can serve: readiness of its dependencies and gauges read at scrape time."""
