"""`python -m flows.cli`: the `streamflow` command."""

from flows.cli import app

app()
