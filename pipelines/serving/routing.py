"""Where a request goes and what of it is kept: A/B assignment, shadow sampling, input hashes,
size-limited text and token counts. Pure: strings in, values out.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from models.db.enums import ExperimentKind, SplitKey, Variant

_SCALE = float(1 << 64)


def unit_hash(*parts: str) -> float:
    """A number in [0, 1) that depends only on `parts` (SHA-256, first 64 bits).

    The parts are length-prefixed, so ("ab", "c") and ("a", "bc") differ.
    """
    digest = hashlib.sha256()
    for part in parts:
        encoded = part.encode()
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return int.from_bytes(digest.digest()[:8], "big") / _SCALE


def assign_variant(salt: str, key: str, challenger_share: float) -> Variant:
    """The sticky A/B variant of `key`: the same salt and key always get the same answer, and
    about `challenger_share` of keys get the challenger."""
    return Variant.CHALLENGER if unit_hash("ab", salt, key) < challenger_share else Variant.CHAMPION


def in_shadow_sample(salt: str, request_id: str, sample_rate: float) -> bool:
    """Whether the challenger also answers this request (about `sample_rate` of requests)."""
    if sample_rate >= 1.0:
        return True
    return unit_hash("shadow", salt, request_id) < sample_rate


def split_key_of(split_key: str, organization_id: str, end_user_key: str | None) -> str:
    """What an A/B split hashes: the end user within its tenant, or the tenant."""
    if split_key == SplitKey.END_USER and end_user_key:
        return f"{organization_id}/{end_user_key}"
    return organization_id


def input_hash(text: str) -> str:
    """SHA-256 of the whole input, hex (pairs identical inputs whatever was clipped)."""
    return hashlib.sha256(text.encode()).hexdigest()


def clip(text: str, limit: int) -> str:
    """At most `limit` characters of `text` (0: nothing)."""
    return text[: max(limit, 0)]


def count_tokens(text: str) -> int:
    """Whitespace-separated words: the token count usage events carry for local agents."""
    return len(text.split())


@dataclass(frozen=True)
class Route:
    """Which model version answers a request, and what else happens to it.

    `shadow` is set when the challenger should also answer (after the response is sent).
    """

    answering: str
    """`NAME@VERSION` that answers."""
    variant: Variant | None
    experiment_id: str | None
    shadow: str | None = None
    """`NAME@VERSION` of the shadow challenger, when this request is in its sample."""


@dataclass(frozen=True)
class LiveExperiment:
    """What the serving path needs of a running experiment."""

    id: str
    agent_type: str
    kind: ExperimentKind
    challenger: str
    sample_rate: float
    traffic_split: float
    split_key: str
    salt: str


def route(
    *,
    champion: str,
    experiment: LiveExperiment | None,
    request_id: str,
    organization_id: str,
    end_user_key: str | None,
) -> Route:
    """Where one request goes: the champion alone, the champion with a shadow, or its A/B
    variant."""
    if experiment is None:
        return Route(champion, None, None)
    if experiment.kind == ExperimentKind.AB:
        key = split_key_of(experiment.split_key, organization_id, end_user_key)
        variant = assign_variant(experiment.salt, key, experiment.traffic_split)
        answering = experiment.challenger if variant == Variant.CHALLENGER else champion
        return Route(answering, variant, experiment.id)
    shadow = (
        experiment.challenger
        if in_shadow_sample(experiment.salt, request_id, experiment.sample_rate)
        else None
    )
    return Route(champion, Variant.CHAMPION, experiment.id, shadow)
