"""ACME HTTP-01 answers: `GET /.well-known/acme-challenge/{token}` (public, as RFC 8555 needs).

The CA fetches the key authorization of a pending challenge over plain HTTP on port 80 of the
hostname; the edge routes that path here. Only tokens the issuing flow stored are answered.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

from api.deps import AddressLimited, StateDep
from api.errors import problem_responses
from api.state import ApiState
from pipelines.certificates.service import http01_answer

router = APIRouter(tags=["acme"])

Token = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9_-]{1,200}$", description="The challenge token (base64url).")
]


def _answer(state: ApiState, token: str) -> str:
    # The platform answers: challenges are its own (no tenant reads them).
    with state.sessions() as session, session.begin():
        return http01_answer(session, token=token, now=datetime.now(UTC))


@router.get(
    "/.well-known/acme-challenge/{token}",
    response_class=PlainTextResponse,
    dependencies=[AddressLimited],
    responses={200: {"content": {"text/plain": {}}}, **problem_responses(404, 422, 429)},
)
async def acme_challenge(token: Token, state: StateDep) -> PlainTextResponse:
    """Answer a pending ACME HTTP-01 challenge with its key authorization."""
    answer = await run_in_threadpool(_answer, state, token)
    return PlainTextResponse(answer)
