"""Serving the agents in the API process: which version answers, the prediction, its record,
and the hand-off of shadow work.

The champion of each agent type and the running experiments are remembered for
`alias_cache_seconds`, so an alias moved or an experiment started by another process applies
here within that bound. Loaded models are cached per version by the registry client. The
served prediction's traffic row and usage event are handed to the serving log (`api.serving_log`),
which writes them through the platform's session (metering is the platform's record) in
batches off the request path; shadow work is queued after the response is sent, and the
challenger's rows go through the same log.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import mlflow
from sqlalchemy.orm import Session, sessionmaker

from api import heap
from api.errors import PredictionFailed
from api.serving_log import Rows, ServingLog
from api.shadow import (
    ProcessShadow,
    Runner,
    Shadow,
    ShadowDispatcher,
    ShadowTask,
    ThreadRunner,
    WorkerLink,
)
from api.shadow_worker import WorkerConfig, predict_one
from models.db.engine import transaction
from models.db.enums import ExperimentKind
from models.registry import client as registry
from models.registry.serving import AgentChampion, ChampionCache, RefreshAhead
from models.settings import ServingSettings
from pipelines.errors import NotFound
from pipelines.experiments.service import live_experiments
from pipelines.serving.routing import LiveExperiment, route
from pipelines.serving.service import Prediction, record_batch, traffic_row, usage_row


@dataclass(frozen=True)
class Served:
    """What the caller gets, and the shadow task to queue once the response is sent."""

    request_id: str
    agent_type: str
    model_version: str
    output: str
    latency_ms: float
    experiment_id: str | None
    variant: str | None
    shadow: ShadowTask | None


class ExperimentCache:
    """Running experiments by agent type, remembered for `ttl_seconds` and refreshed ahead of
    their expiry (see `RefreshAhead`)."""

    def __init__(self, sessions: sessionmaker[Session], ttl_seconds: float) -> None:
        self._sessions = sessions
        self._value = RefreshAhead(ttl_seconds, self._load)

    def _load(self) -> dict[str, LiveExperiment]:
        with self._sessions() as session, session.begin():
            return live_experiments(session)

    def get(self, agent_type: str) -> LiveExperiment | None:
        return self._value.get().get(agent_type)

    def forget(self) -> None:
        self._value.forget()


SHADOW_STARTUP_SECONDS = 60.0
"""Longest a shadow worker process may take to start, and to load a model version."""


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


class ServingRuntime:
    """What `/v1/agents` uses: caches, the prediction path and the shadow dispatcher."""

    def __init__(
        self,
        settings: ServingSettings,
        sessions: sessionmaker[Session],
        *,
        make_runner: Callable[[], Runner] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self._sessions = sessions
        self._clock = clock
        bind = sessions.kw.get("bind")
        self._write_lock: threading.Lock | contextlib.nullcontext[None] = (
            threading.Lock()
            if bind is not None and bind.dialect.name == "sqlite"
            else contextlib.nullcontext()
        )
        """SQLite has one write lock per database, and a writer that finds it taken sleeps in
        growing steps (up to 100 ms) before it asks again; taking turns on a lock of this
        process hands it over at once. PostgreSQL locks rows, so its writers need no turns."""
        self.champions = ChampionCache(settings.alias_cache_seconds)
        self.experiments = ExperimentCache(sessions, settings.alias_cache_seconds)
        self.log = ServingLog(
            self._write_rows,
            batch_size=settings.log_batch_size,
            flush_seconds=settings.log_flush_seconds,
            capacity=settings.log_buffer_size,
            write_lock=self._write_lock,
        )
        self.shadow: Shadow
        if make_runner is None and settings.shadow_mode == "process" and bind is not None:
            self.shadow = ProcessShadow(
                make_link=self._worker_link,
                workers=settings.shadow_workers,
                queue_size=settings.shadow_queue_size,
                batch_size=settings.log_batch_size,
                gather_seconds=settings.log_flush_seconds,
            )
        else:
            self.shadow = ShadowDispatcher(
                make_runner=make_runner or ThreadRunner,
                sink=self._add_shadow_row,
                workers=settings.shadow_workers,
                queue_size=settings.shadow_queue_size,
                text_limit=settings.traffic_text_limit,
                clock=clock,
            )

    def _add_shadow_row(self, row: dict[str, Any]) -> bool:
        return self.log.add([row], [], served=False)

    def _worker_link(self) -> WorkerLink:
        """A shadow worker process writing to this runtime's database, as the platform."""
        settings = self.settings
        config = WorkerConfig(
            tracking_uri=mlflow.get_tracking_uri(),
            database_url=self._sessions.kw["bind"].url.render_as_string(hide_password=False),
            timeout_seconds=settings.shadow_timeout_seconds,
            startup_seconds=SHADOW_STARTUP_SECONDS,
            text_limit=settings.traffic_text_limit,
            flush_seconds=settings.log_flush_seconds,
            batch_size=settings.log_batch_size,
            capacity=settings.log_buffer_size,
            niceness=settings.shadow_niceness,
            idle=settings.shadow_idle_priority,
        )
        return WorkerLink(config, fallback=self._add_shadow_row, clock=self._clock)

    def _write_rows(self, traffic: Rows, usage: Rows) -> None:
        with transaction(self._sessions) as session:
            record_batch(session, traffic, usage)

    def flush(self) -> None:
        """Write the rows the serving log holds now (before reading a request back)."""
        self.log.flush()

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait for the shadow tasks queued so far, then write every row held (tests,
        shutdown); False when the challenger did not finish within `timeout` seconds."""
        drained = self.shadow.drain(timeout=timeout)
        self.log.flush()
        return drained

    def agents(self) -> dict[str, AgentChampion]:
        return self.champions.all()

    def forget(self) -> None:
        """Drop the remembered aliases and experiments (this process changed one)."""
        self.champions.forget()
        self.experiments.forget()

    def predict(
        self,
        *,
        agent_type: str,
        text: str,
        organization_id: uuid.UUID,
        end_user_key: str | None,
    ) -> Served:
        """The answering version's prediction, recorded; blocking (run it in a thread)."""
        champion = self.champions.get(agent_type)
        if champion is None:
            raise NotFound(
                f"agent type {agent_type!r} has no champion model version; GET /v1/agents "
                "lists the agent types you can call",
                field="agent_type",
            )
        request_id = uuid.uuid4().hex
        experiment = self.experiments.get(agent_type)
        chosen = route(
            champion=str(champion.champion),
            experiment=experiment,
            request_id=request_id,
            organization_id=str(organization_id),
            end_user_key=end_user_key,
        )
        started = time.perf_counter()
        output: str | None = None
        error: str | None = None
        try:
            name, _, version = chosen.answering.partition("@")
            model = heap.load_model(registry.ModelVersionRef(name, version))
            output = predict_one(model, text)
        except Exception as failure:
            error = f"{type(failure).__name__}: {failure}"[:2000]
        latency = _ms(started)
        prediction = Prediction(
            request_id=request_id,
            organization_id=organization_id,
            agent_type=agent_type,
            model_version=chosen.answering,
            input_text=text,
            output_text=output,
            latency_ms=latency,
            error=error,
            experiment_id=chosen.experiment_id,
            variant=chosen.variant,
            end_user_key=end_user_key,
        )
        now = self._clock()
        usage = usage_row(prediction, now=now)
        self.log.add(
            [traffic_row(prediction, now=now, text_limit=self.settings.traffic_text_limit)],
            [] if usage is None else [usage],
            served=True,
        )
        if output is None:
            raise PredictionFailed(
                f"{chosen.answering} failed to answer request {request_id}; retry, or tell the "
                "provider the request id"
            )
        shadow = None
        if chosen.shadow is not None and chosen.experiment_id is not None:
            shadow = ShadowTask(
                request_id=request_id,
                organization_id=organization_id,
                agent_type=agent_type,
                experiment_id=chosen.experiment_id,
                challenger=chosen.shadow,
                input_text=text,
                end_user_key=end_user_key,
            )
        # A shadow is invisible to the caller: its response is the champion's alone.
        visible = experiment is not None and experiment.kind == ExperimentKind.AB
        return Served(
            request_id=request_id,
            agent_type=agent_type,
            model_version=chosen.answering,
            output=output,
            latency_ms=round(latency, 3),
            experiment_id=chosen.experiment_id if visible else None,
            variant=str(chosen.variant) if visible and chosen.variant else None,
            shadow=shadow,
        )

    def close(self) -> None:
        """Stop the shadow workers, then write what the serving log holds."""
        self.shadow.close()
        self.log.close()
