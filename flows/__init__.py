"""When things run: Prefect flows and the `streamflow` CLI that starts them."""

import os
from pathlib import Path

# The embedded default keeps Prefect's own state beside StreamFlow's, and nothing phones home.
_home = Path(os.environ.get("STREAMFLOW_HOME", ".streamflow")).resolve()
if "PREFECT_HOME" not in os.environ:
    os.environ["PREFECT_HOME"] = str(_home / "prefect")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
