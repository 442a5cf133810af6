"""Statistics for shadow and A/B experiments and the promotion gate (pure cores).

`sequential` (always-valid tests and confidence sequences, McNemar, Holm across slices),
`srm` (sample-ratio mismatch), `planning` (sample sizes), `quantiles` (p95 latency
difference) and `gate` (the promotion decision). No I/O, no clock, no settings.
"""
