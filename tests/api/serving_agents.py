"""Tiny agents registered as model versions by the serving tests: a champion, a better
challenger, and challengers that raise, hang or answer garbage."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any


class KeywordIntent:
    """Labels a ticket `billing` when it mentions money, else `other`."""

    def predict(self, texts: Sequence[str]) -> list[str]:
        return ["billing" if "invoice" in t.lower() else "other" for t in texts]


class SharperIntent:
    """Like KeywordIntent, and also knows refunds."""

    def predict(self, texts: Sequence[str]) -> list[str]:
        words = ("invoice", "refund")
        return ["billing" if any(w in t.lower() for w in words) else "other" for t in texts]


class RaisingIntent:
    def predict(self, texts: Sequence[str]) -> list[str]:
        raise RuntimeError("challenger exploded")


class SleepingIntent:
    """Hangs for 10 s before answering."""

    def predict(self, texts: Sequence[str]) -> list[str]:
        time.sleep(10)
        return ["late" for _ in texts]


class GarbageIntent:
    """Answers the wrong number of outputs, of the wrong type."""

    def predict(self, texts: Sequence[str]) -> list[Any]:
        return [b"\xff\xfe", None, 42, *texts]
