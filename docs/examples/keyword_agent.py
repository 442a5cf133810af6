"""An example agent to register with `streamflow models register --agent keyword_agent:build`.

An agent is any object with `predict(list[str]) -> list[str]`: one output per input, in order.
This one labels support tickets by keywords. MLflow stores the agent by reference to this
module, so the module must stay importable (installed, or its folder on PYTHONPATH) in every
process that evaluates the model version, not only when it is registered.
"""

from __future__ import annotations

KEYWORDS = {
    "billing": ("invoice", "charge", "refund", "bill", "payment"),
    "scheduling": ("reschedule", "appointment", "visit", "cancel", "time"),
    "repair": ("leak", "broken", "noise", "not working", "repair"),
}


class KeywordAgent:
    """Labels a text with the first intent whose keyword it contains, else `other`."""

    def __init__(self, keywords: dict[str, tuple[str, ...]]) -> None:
        self.keywords = keywords

    def predict(self, texts: list[str]) -> list[str]:
        """One intent label per text."""
        return [self._label(text.lower()) for text in texts]

    def _label(self, text: str) -> str:
        for intent, words in self.keywords.items():
            if any(word in text for word in words):
                return intent
        return "other"


def build() -> KeywordAgent:
    """The factory `--agent keyword_agent:build` calls (no arguments)."""
    return KeywordAgent(KEYWORDS)
