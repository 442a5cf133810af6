"""The reference for the API benchmark: a bare FastAPI app returning a fixed JSON document.

`uvicorn --factory bench.bare_app:create_app`; the document's path is in BENCH_DOCUMENT.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI


def create_app() -> FastAPI:
    document: dict[str, Any] = json.loads(Path(os.environ["BENCH_DOCUMENT"]).read_text())
    app = FastAPI()

    @app.get("/bare")
    def bare() -> dict[str, Any]:
        """The same JSON the cached read serves, encoded by FastAPI on every request."""
        return document

    return app
