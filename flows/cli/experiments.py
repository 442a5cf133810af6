"""`streamflow experiments`: shadow and A/B experiments of challengers against champions."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from flows.cli.output import JsonOption, emit
from models.db.enums import ExperimentKind, ExperimentStatus, SplitKey

app = typer.Typer(
    help="Shadow and A/B experiments: create, list, show, start, pause, stop.",
    no_args_is_help=True,
)

ExperimentId = Annotated[
    str, typer.Argument(help="Experiment id from `streamflow experiments list`.")
]


def _experiment_id(text: str) -> Any:
    import uuid

    from pipelines.errors import InvalidInput

    try:
        return uuid.UUID(text)
    except ValueError:
        raise InvalidInput(
            f"{text!r} is not an experiment id; copy one from `streamflow experiments list`",
            field="experiment_id",
        ) from None


def _champion(agent_type: str) -> str | None:
    from models.registry.serving import agent_champions

    found = agent_champions().get(agent_type)
    return None if found is None else str(found.champion)


def _resolve(reference: str) -> str:
    from models.registry import client as registry

    try:
        return str(registry.resolve(reference))
    except registry.InvalidModelReference as error:
        raise LookupError(str(error)) from error


@app.command("create")
def create(
    kind: Annotated[ExperimentKind, typer.Option(help="shadow or ab.")],
    agent: Annotated[str, typer.Option(help="The agent type, e.g. intent.")],
    challenger: Annotated[str, typer.Option(help="NAME@VERSION of the challenger.")],
    mde: Annotated[float, typer.Option(help="Minimum detectable effect (metric's scale).")],
    sd: Annotated[float, typer.Option(help="Standard deviation of the metric per request.")] = 0.5,
    alpha: Annotated[float, typer.Option(help="False-positive rate.")] = 0.05,
    power: Annotated[float, typer.Option(help="Chance to detect an effect of --mde.")] = 0.8,
    sample_rate: Annotated[
        float, typer.Option(help="Shadow: the share of requests the challenger also answers.")
    ] = 1.0,
    traffic_split: Annotated[
        float, typer.Option(help="A/B: the share of keys the challenger answers for.")
    ] = 0.5,
    split_key: Annotated[SplitKey, typer.Option(help="A/B: split by tenant or end user.")] = (
        SplitKey.TENANT
    ),
    description: Annotated[str, typer.Option(help="What the experiment is for.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Create a draft experiment and show its planned sample size; start it to send traffic."""
    from dataclasses import asdict

    from flows.cli.context import session
    from flows.runtime import cli_actor, runtime
    from pipelines.experiments.service import ExperimentRequest, create_experiment

    runtime()
    request = ExperimentRequest(
        kind=kind,
        agent_type=agent,
        challenger=challenger,
        mde=mde,
        sd=sd,
        alpha=alpha,
        power=power,
        sample_rate=sample_rate,
        traffic_split=traffic_split,
        split_key=split_key,
        description=description,
    )
    with session() as opened:
        created = create_experiment(
            opened,
            request,
            champion=_champion(agent),
            resolve=_resolve,
            actor=cli_actor(),
            now=_now(),
        )
    emit(_document(asdict(created)), as_json=as_json, render=_detail)


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _document(found: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in found.items()}


@app.command("list")
def list_(
    agent: Annotated[str | None, typer.Option(help="Only this agent type.")] = None,
    status: Annotated[ExperimentStatus | None, typer.Option(help="Only this status.")] = None,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of the previous page.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Experiments per page.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List experiments, newest first."""
    from dataclasses import asdict

    from flows.cli.context import session
    from pipelines.experiments.service import experiments_page

    with session() as opened:
        found = experiments_page(
            opened,
            agent_type=agent,
            status=None if status is None else str(status),
            cursor=cursor,
            limit=limit,
        )
    result = {
        "items": [_document(asdict(item)) for item in found.items],
        "next_cursor": found.next_cursor,
    }
    emit(result, as_json=as_json, render=_table)


@app.command("show")
def show(experiment_id: ExperimentId, as_json: JsonOption = False) -> None:
    """Show one experiment."""
    from dataclasses import asdict

    from flows.cli.context import session
    from pipelines.experiments.service import get_experiment

    with session() as opened:
        found = get_experiment(opened, _experiment_id(experiment_id))
    emit(_document(asdict(found)), as_json=as_json, render=_detail)


def _change(experiment_id: str, action: str, as_json: bool) -> None:
    from dataclasses import asdict

    from flows.cli.context import session
    from flows.runtime import cli_actor, runtime
    from pipelines.experiments.service import change_status, get_experiment

    runtime()
    identifier = _experiment_id(experiment_id)
    with session() as opened:
        champion = None
        if action == "start":
            champion = _champion(get_experiment(opened, identifier).agent_type)
        changed = change_status(
            opened, identifier, action, actor=cli_actor(), now=_now(), champion=champion
        )
    emit(_document(asdict(changed)), as_json=as_json, render=_detail)


@app.command("start")
def start(experiment_id: ExperimentId, as_json: JsonOption = False) -> None:
    """Start (or resume) an experiment; API processes pick it up within their cache time."""
    _change(experiment_id, "start", as_json)


@app.command("pause")
def pause(experiment_id: ExperimentId, as_json: JsonOption = False) -> None:
    """Pause a running experiment."""
    _change(experiment_id, "pause", as_json)


@app.command("stop")
def stop(experiment_id: ExperimentId, as_json: JsonOption = False) -> None:
    """Stop an experiment for good."""
    _change(experiment_id, "stop", as_json)


def _detail(console: Console, r: dict[str, Any]) -> None:
    console.print(
        f"experiment {r['id']} ({r['kind']}, {r['status']}) on {r['agent_type']}: "
        f"champion {r['champion_version']} vs challenger {r['challenger_version']}"
    )
    if r["kind"] == "shadow":
        console.print(f"shadow sample: {r['sample_rate']:.0%} of requests")
    else:
        console.print(f"A/B: challenger answers {r['traffic_split']:.0%} by {r['split_key']}")
    plan = r["plan"]
    console.print(
        f"planned sample size: {r['planned_sample_size']:,} "
        f"({'pairs' if plan.get('paired') else 'per variant'}; fixed-horizon "
        f"{plan.get('fixed_n', 0):,}) to detect {r['mde']:g} at alpha {plan.get('alpha')}, "
        f"power {plan.get('power')}"
    )


def _table(console: Console, page: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table("id", "agent", "kind", "status", "champion", "challenger", "planned n")
    for r in page["items"]:
        table.add_row(
            r["id"][:8],
            r["agent_type"],
            r["kind"],
            r["status"],
            r["champion_version"],
            r["challenger_version"],
            f"{r['planned_sample_size']:,}",
        )
    console.print(table)
    if page["next_cursor"]:
        console.print(f"more: --cursor {page['next_cursor']}")
