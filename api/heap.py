"""The API process's heap and the cyclic garbage collector.

A full collection walks every object the collector tracks while holding the interpreter, so
every request waits for it. The app moves its heap out of the collector's reach at startup
(`gc.freeze()` in `api.app`), but the first load of a model version brings long-lived objects
of its own (the modules MLflow and the model's libraries import lazily, the model itself):
about 85,000 for the demo's classifier, which made each later full collection pause the
process for 0.1–0.15 s, and over a second on a loaded machine. So the first load of each
version in this process freezes the heap again.
"""

from __future__ import annotations

import gc
import threading
from typing import Any

import mlflow

from models.registry import client as registry

_frozen: set[tuple[str, str, str]] = set()
"""(tracking store, model, version) loaded here since the heap was last frozen for them."""
_lock = threading.Lock()


def load_model(ref: registry.ModelVersionRef) -> Any:
    """`registry.load_model`, freezing the heap after this process first loads `ref`'s version
    (the young generations are collected first, so little garbage is frozen with it)."""
    model = registry.load_model(ref)
    key = (mlflow.get_tracking_uri(), ref.name, ref.version)
    if key not in _frozen:
        with _lock:
            if key not in _frozen:
                gc.collect(1)
                gc.freeze()
                _frozen.add(key)
    return model
