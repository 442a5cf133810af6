"""Where requests go, on literal inputs: sticky A/B assignment and shadow sampling."""

from __future__ import annotations

from typing import Any

from models.db.enums import ExperimentKind, Variant
from models.registry.client import ModelVersionRef
from models.registry.serving import AgentChampion, ChampionCache
from pipelines.serving.routing import (
    LiveExperiment,
    assign_variant,
    clip,
    in_shadow_sample,
    route,
    split_key_of,
    unit_hash,
)


def _experiment(kind: ExperimentKind, **changes: object) -> LiveExperiment:
    values: dict[str, object] = {
        "id": "e1",
        "agent_type": "intent",
        "kind": kind,
        "challenger": "m@2",
        "sample_rate": 1.0,
        "traffic_split": 0.5,
        "split_key": "tenant",
        "salt": "salt",
        **changes,
    }
    return LiveExperiment(**values)  # type: ignore[arg-type]


def test_assignment_is_sticky_and_near_the_split() -> None:
    keys = [f"user-{n}" for n in range(4000)]
    first = [assign_variant("salt", k, 0.3) for k in keys]
    assert first == [assign_variant("salt", k, 0.3) for k in keys]
    share = first.count(Variant.CHALLENGER) / len(keys)
    assert 0.27 < share < 0.33
    # Another salt reshuffles who is where.
    assert first != [assign_variant("other", k, 0.3) for k in keys]


def test_hash_parts_are_length_prefixed() -> None:
    assert unit_hash("ab", "c") != unit_hash("a", "bc")
    assert 0 <= unit_hash("x") < 1


def test_shadow_sample_rate_and_determinism() -> None:
    ids = [f"r{n}" for n in range(4000)]
    sampled = [in_shadow_sample("s", r, 0.25) for r in ids]
    assert 0.22 < sum(sampled) / len(ids) < 0.28
    assert sampled == [in_shadow_sample("s", r, 0.25) for r in ids]
    assert all(in_shadow_sample("s", r, 1.0) for r in ids[:10])


def test_routes() -> None:
    alone = route(
        champion="m@1", experiment=None, request_id="r", organization_id="o", end_user_key=None
    )
    assert (alone.answering, alone.variant, alone.shadow) == ("m@1", None, None)
    shadow = route(
        champion="m@1",
        experiment=_experiment(ExperimentKind.SHADOW),
        request_id="r",
        organization_id="o",
        end_user_key=None,
    )
    assert (shadow.answering, shadow.variant, shadow.shadow) == ("m@1", Variant.CHAMPION, "m@2")
    everyone = _experiment(ExperimentKind.AB, traffic_split=0.999999)
    ab = route(
        champion="m@1", experiment=everyone, request_id="r", organization_id="o", end_user_key="u"
    )
    assert (ab.answering, ab.variant, ab.shadow) == ("m@2", Variant.CHALLENGER, None)


def test_split_key_and_clip() -> None:
    assert split_key_of("tenant", "org", "user") == "org"
    assert split_key_of("end_user", "org", "user") == "org/user"
    assert split_key_of("end_user", "org", None) == "org"
    assert clip("abcdef", 3) == "abc"


def test_champion_cache_holds_for_its_lifetime_then_asks_again() -> None:
    now = [0.0]
    calls: list[int] = []
    version = ["1"]

    def source() -> dict[str, AgentChampion]:
        calls.append(1)
        ref = ModelVersionRef("m", version[0], "champion")
        return {"intent": AgentChampion("intent", "classification", ref)}

    cache = ChampionCache(5.0, timer=lambda: now[0], source=source)
    assert str(cache.get("intent").champion) == "m@1"  # type: ignore[union-attr]
    version[0] = "2"
    now[0] = 4.9
    assert str(cache.get("intent").champion) == "m@1"  # type: ignore[union-attr]
    now[0] = 5.1
    assert str(cache.get("intent").champion) == "m@2"  # type: ignore[union-attr]
    assert len(calls) == 2


def test_champion_cache_refreshes_ahead_of_expiry_without_the_reader_waiting() -> None:
    """Past half its lifetime a read gets the value held and starts one refresh (run at once
    here, in place of a thread); `forget` makes the next read load."""
    now = [0.0]
    version = ["1"]
    calls: list[str] = []
    spawned: list[Any] = []

    def source() -> dict[str, AgentChampion]:
        calls.append(version[0])
        ref = ModelVersionRef("m", version[0], "champion")
        return {"intent": AgentChampion("intent", "classification", ref)}

    cache = ChampionCache(5.0, timer=lambda: now[0], source=source, spawn=spawned.append)
    assert str(cache.get("intent").champion) == "m@1"  # type: ignore[union-attr]
    version[0], now[0] = "2", 3.0
    assert str(cache.get("intent").champion) == "m@1"  # type: ignore[union-attr]
    assert str(cache.get("intent").champion) == "m@1"  # type: ignore[union-attr]
    assert len(spawned) == 1  # one refresh, however many readers
    spawned.pop()()
    assert str(cache.get("intent").champion) == "m@2"  # type: ignore[union-attr]
    version[0] = "3"
    cache.forget()
    assert str(cache.get("intent").champion) == "m@3"  # type: ignore[union-attr]
    assert calls == ["1", "2", "3"]
