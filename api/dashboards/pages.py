"""Rendering dashboard pages: the Jinja2 templates and static assets of `dashboards/`."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from api.dashboards.auth import DashboardContext, SignInRequired
from api.errors import Busy
from pipelines.access.service import Forbidden, Unauthenticated
from pipelines.errors import Conflict, InvalidInput, NotFound, StreamflowError
from pipelines.evaluation.quality import default_scale
from pipelines.evaluation.text_diff import word_diff

DASHBOARDS_DIR = Path(__file__).resolve().parents[2] / "dashboards"
"""The data folder holding the templates and the vendored JavaScript."""
SECURITY_HEADERS = {
    # Vega compiles its expressions with `new Function`, hence 'unsafe-eval'; no inline script.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

templates = Jinja2Templates(directory=DASHBOARDS_DIR / "templates")


def static_files() -> StaticFiles:
    return StaticFiles(directory=DASHBOARDS_DIR / "static")


def _number(value: float | None, metric: str = "", digits: int | None = None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    places = digits if digits is not None else (2 if default_scale(metric) > 1 else 4)
    return f"{value:.{places}f}"


def _interval(low: float | None, high: float | None, metric: str = "") -> str:
    if low is None or high is None:
        return "no interval"
    return f"[{_number(low, metric)}, {_number(high, metric)}]"


def _p_value(value: float | None) -> str:
    if value is None:
        return "–"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _money(micros: int | None, currency: str = "") -> str:
    """Micro-units as the currency's units, exactly (Decimal), to the cent."""
    if micros is None:
        return "–"
    units = (Decimal(micros) / Decimal(1_000_000)).quantize(Decimal("0.01"))
    return f"{units:,} {currency}".strip()


def _basis_points(value: int | None) -> str:
    return "–" if value is None else f"{Decimal(value) / Decimal(100):.2f}%"


def _when(moment: datetime | None) -> str:
    return "–" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def _chart(spec: dict[str, Any], label: str) -> Markup:
    """A chart container: the spec as inert JSON that `dashboards.js` hands to vega-embed."""
    data = json.dumps(spec).replace("</", "<\\/")
    return Markup(
        '<figure class="chart" role="img" aria-label="{label}"><div class="chart-body"></div>'
        '<script type="application/json" class="chart-spec">{data}</script></figure>'
    ).format(label=label, data=Markup(data))


def _diff(expected: str | None, predicted: str) -> Markup:
    if expected is None:
        return Markup("<span>{}</span>").format(predicted)
    parts = []
    for segment in word_diff(expected, predicted):
        tag = {"same": "span", "removed": "del", "added": "ins"}[segment.kind]
        parts.append(Markup("<{tag}>{text}</{tag}>").format(tag=Markup(tag), text=segment.text))
    return Markup("").join(parts)


templates.env.filters.update(
    number=_number,
    interval=_interval,
    p_value=_p_value,
    when=_when,
    diff=_diff,
    money=_money,
    percent_bps=_basis_points,
)
templates.env.globals.update(vega_chart=_chart)


def render(
    request: Request,
    template: str,
    context: DashboardContext | None,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    """A page (or an HTMX fragment) with who is signed in and the CSRF token at hand."""
    response = templates.TemplateResponse(
        request,
        template,
        {
            "signed_in": context.signed_in if context is not None else None,
            "csrf_token": context.signed_in.csrf_token if context is not None else "",
            "can_change": context.can_change if context is not None else False,
            "fragment": request.headers.get("HX-Request") == "true",
            **values,
        },
        status_code=status_code,
    )
    response.headers.update(SECURITY_HEADERS)
    return response


STATUS_OF_ERROR: dict[type[StreamflowError], int] = {
    NotFound: 404,
    InvalidInput: 422,
    Forbidden: 403,
    Unauthenticated: 401,
    Conflict: 409,
}


class PageRoute(APIRoute):
    """A dashboard route: domain errors become an error page, a missing session a sign-in."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired as missing:
                if request.headers.get("HX-Request") == "true":
                    return Response(status_code=401, headers={"HX-Redirect": missing.location})
                return RedirectResponse(missing.location, status_code=303)
            except RequestValidationError as error:
                message = "; ".join(
                    f"{'.'.join(str(part) for part in problem['loc'][1:])}: {problem['msg']}"
                    for problem in error.errors()
                )
                return _error_page(request, 422, message)
            except Busy as busy:
                # Every computation slot is taken (or another server is computing the same
                # comparison): the page says so and when to try again.
                page = _error_page(request, 503, str(busy))
                page.headers["Retry-After"] = str(max(1, busy.retry_after_seconds))
                return page
            except StreamflowError as error:
                status = next(
                    (code for kind, code in STATUS_OF_ERROR.items() if isinstance(error, kind)),
                    400,
                )
                return _error_page(request, status, str(error))

        return handle


def _error_page(request: Request, status: int, message: str) -> Response:
    """The error as a page, or for an HTMX request as a fragment with a "Try again" button
    (`dashboards.js` swaps error fragments in; HTMX alone ignores non-2xx answers)."""
    fragment = request.headers.get("HX-Request") == "true"
    template = "error_fragment.html" if fragment else "error.html"
    return render(request, template, None, status_code=status, status=status, message=message)
