"""Client side of provider API signatures: sign_request, the httpx auth and ProviderClient."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.provider_client import ProviderClient, ProviderSigningAuth, sign_request
from api.signing import (
    KEY_ID_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    RejectionCode,
    SignatureRejected,
    SignedRequest,
    sign,
    verify,
)
from tests.api.test_signing import KEY_ID, KEYS, NOW, SECRET, TOLERANCE, MemoryNonces

BASE_URL = "https://streamflow.test"

EDGE_CASE_PARAMS = [
    pytest.param([("q", "a b")], id="space"),
    pytest.param([("q", "a+b")], id="plus"),
    pytest.param([("q", "café crème")], id="latin"),
    pytest.param([("q", "東京 🚀")], id="cjk-emoji"),
    pytest.param([("q", ":/?#[]@!$&'()*+,;=")], id="reserved"),
    pytest.param([("q", "100% ~-._")], id="percent-unreserved"),
    pytest.param([("q", "")], id="empty-value"),
    pytest.param([("na me", "v"), ("é", "ü")], id="odd-names"),
    pytest.param([("b", "2"), ("a", "2"), ("a", "1")], id="unsorted-repeated"),
]
EDGE_CASE_PATHS = [
    pytest.param("/provider/v1/tenants", id="plain"),
    pytest.param("/provider/v1/café", id="unicode-raw"),
    pytest.param("/provider/v1/caf%C3%A9", id="unicode-encoded"),
    pytest.param("/provider/v1/a b", id="space"),
    pytest.param("/provider/v1/x%2Fy", id="encoded-slash"),
    pytest.param("/provider/v1/~user/t;v=1", id="sub-delims"),
]


class Recorder:
    """A MockTransport handler that keeps every request sent and answers 200."""

    def __init__(self) -> None:
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.sent.append(request)
        return httpx.Response(200, json={"ok": True})


def as_received(request: httpx.Request) -> SignedRequest:
    """What a server receives from `request`: the request target and the body bytes."""
    path, _, query = request.url.raw_path.decode("ascii").partition("?")
    return SignedRequest(
        method=request.method,
        path=path,
        query=query,
        body=request.content,
        headers=dict(request.headers),
    )


def check(request: SignedRequest, *, now: float = NOW) -> str:
    """Verify as the server would, with fresh nonce memory."""
    return asyncio.run(
        verify(
            request,
            keys=KEYS,
            now=now,
            tolerance_seconds=TOLERANCE,
            claim_nonce=MemoryNonces(),
        )
    )


def fixed_clock() -> float:
    return NOW


class TestSignRequest:
    def test_returns_the_four_headers_signed_like_sign(self) -> None:
        """With a given timestamp and nonce the headers are deterministic and match `sign`."""
        headers = sign_request(
            KEY_ID,
            SECRET,
            "post",
            "/provider/v1/tenants?b=2&a=1",
            b"{}",
            timestamp=1767225600,
            nonce="n0nce-0123456789abcdef",
        )
        assert headers == {
            KEY_ID_HEADER: KEY_ID,
            TIMESTAMP_HEADER: "1767225600",
            NONCE_HEADER: "n0nce-0123456789abcdef",
            SIGNATURE_HEADER: sign(
                SECRET,
                key_id=KEY_ID,
                timestamp=1767225600,
                nonce="n0nce-0123456789abcdef",
                method="POST",
                path="/provider/v1/tenants",
                query=[("a", "1"), ("b", "2")],
                body=b"{}",
            ),
        }

    def test_absolute_url_and_path_sign_alike_and_a_str_secret_is_its_utf8(self) -> None:
        """Scheme and host are not signed; a str secret equals its UTF-8 bytes."""
        fixed: dict[str, Any] = {"timestamp": 1, "nonce": "n0nce-0123456789abcdef"}
        absolute = sign_request(KEY_ID, SECRET, "GET", f"{BASE_URL}/provider/v1/x?a=1", **fixed)
        relative = sign_request(KEY_ID, SECRET.decode(), "GET", "/provider/v1/x?a=1", **fixed)
        assert absolute == relative

    def test_a_url_without_a_path_signs_the_root(self) -> None:
        """`https://host` is sent as `GET /`, so it signs path `/`."""
        fixed: dict[str, Any] = {"timestamp": 1, "nonce": "n0nce-0123456789abcdef"}
        assert sign_request(KEY_ID, SECRET, "GET", BASE_URL, **fixed) == sign_request(
            KEY_ID, SECRET, "GET", "/", **fixed
        )

    def test_defaults_to_the_current_time_and_a_fresh_nonce(self) -> None:
        """Without timestamp and nonce each call uses the clock and a new random nonce."""
        before = int(time.time())
        first = sign_request(KEY_ID, SECRET, "GET", "/provider/v1/x")
        second = sign_request(KEY_ID, SECRET, "GET", "/provider/v1/x")
        assert before <= int(first[TIMESTAMP_HEADER]) <= int(time.time())
        assert first[NONCE_HEADER] != second[NONCE_HEADER]

    def test_a_url_that_is_not_percent_encoded_is_refused(self) -> None:
        """A raw non-ASCII URL would be encoded by the sender after signing, so it is refused."""
        with pytest.raises(ValueError, match="must be percent-encoded exactly as it will be sent"):
            sign_request(KEY_ID, SECRET, "GET", "/provider/v1/café")

    def test_a_short_secret_is_refused_naming_the_key(self) -> None:
        """Signing with a secret under 32 bytes fails before anything is sent."""
        with pytest.raises(ValueError, match=f"'{KEY_ID}' is 8 bytes"):
            sign_request(KEY_ID, b"too-weak", "GET", "/")


class TestProviderSigningAuth:
    def _client(self, recorder: Recorder) -> httpx.Client:
        auth = ProviderSigningAuth(KEY_ID, SECRET, clock=fixed_clock)
        return httpx.Client(base_url=BASE_URL, auth=auth, transport=httpx.MockTransport(recorder))

    @pytest.mark.parametrize("params", EDGE_CASE_PARAMS)
    def test_query_encodings_verify_as_sent(self, params: list[tuple[str, str]]) -> None:
        """Whatever httpx makes of awkward query values, the verifier agrees with the signer."""
        recorder = Recorder()
        with self._client(recorder) as client:
            client.get("/provider/v1/tenants", params=tuple(params))
        assert check(as_received(recorder.sent[0])) == KEY_ID

    @pytest.mark.parametrize("path", EDGE_CASE_PATHS)
    def test_path_encodings_verify_as_sent(self, path: str) -> None:
        """The path is signed in the percent-encoded form httpx puts on the wire."""
        recorder = Recorder()
        with self._client(recorder) as client:
            client.post(path, json={"name": "Zoë"})
        assert check(as_received(recorder.sent[0])) == KEY_ID

    def test_a_query_written_in_the_url_in_any_order_verifies(self) -> None:
        """A hand-written, unsorted query string in the URL is signed as sent."""
        recorder = Recorder()
        with self._client(recorder) as client:
            client.get("/provider/v1/tenants?z=1&a=x+y&m=%7e")
        sent = recorder.sent[0]
        assert sent.url.query == b"z=1&a=x+y&m=%7e"
        assert check(as_received(sent)) == KEY_ID

    def test_a_streamed_body_is_signed_over_the_bytes_sent(self) -> None:
        """A generator body is read before signing, and the signature covers all of it."""
        recorder = Recorder()
        with self._client(recorder) as client:
            client.post("/provider/v1/upload", content=iter([b"part one, ", b"part two"]))
        sent = recorder.sent[0]
        assert sent.content == b"part one, part two"
        assert check(as_received(sent)) == KEY_ID

    def test_the_captured_request_fails_once_changed(self) -> None:
        """The signature is really bound to what was sent: a changed body is refused."""
        recorder = Recorder()
        with self._client(recorder) as client:
            client.post("/provider/v1/tenants", json={"slug": "acme"})
        tampered = replace(as_received(recorder.sent[0]), body=b'{"slug":"evil"}')
        with pytest.raises(SignatureRejected) as info:
            check(tampered)
        assert info.value.code == RejectionCode.BAD_SIGNATURE

    def test_each_request_gets_a_fresh_nonce_and_the_clock_time(self) -> None:
        """Two requests carry different nonces and the injected clock's timestamp."""
        recorder = Recorder()
        with self._client(recorder) as client:
            client.get("/provider/v1/tenants")
            client.get("/provider/v1/tenants")
        first, second = (request.headers for request in recorder.sent)
        assert first[NONCE_HEADER] != second[NONCE_HEADER]
        assert first[TIMESTAMP_HEADER] == second[TIMESTAMP_HEADER] == str(int(NOW))

    def test_works_with_the_async_client(self) -> None:
        """The same auth signs requests of httpx.AsyncClient."""
        recorder = Recorder()

        async def send() -> None:
            auth = ProviderSigningAuth(KEY_ID, SECRET, clock=fixed_clock)
            transport = httpx.MockTransport(recorder)
            async with httpx.AsyncClient(base_url=BASE_URL, auth=auth, transport=transport) as c:
                await c.patch("/provider/v1/tenants/acme", params={"q": "a b"}, json={"x": 1})

        asyncio.run(send())
        assert check(as_received(recorder.sent[0])) == KEY_ID

    def test_a_short_secret_is_refused_at_construction(self) -> None:
        """A weak secret fails when the auth is created, not on the first request."""
        with pytest.raises(ValueError, match="at least 32"):
            ProviderSigningAuth(KEY_ID, "short")


class TestProviderClient:
    @pytest.mark.parametrize(
        ("verb", "kwargs", "body"),
        [
            ("get", {"params": {"limit": 5}}, b""),
            ("post", {"json": {"slug": "acme"}}, b'{"slug":"acme"}'),
            ("patch", {"content": b"raw \x00 bytes", "headers": {"Content-Type": "x/y"}}, None),
            ("delete", {}, b""),
            ("delete", {"json": {"reason": "churn"}}, b'{"reason":"churn"}'),
        ],
    )
    def test_every_verb_is_signed(
        self, verb: str, kwargs: dict[str, object], body: bytes | None
    ) -> None:
        """get, post, patch and delete send signed requests with the given body."""
        recorder = Recorder()
        client = ProviderClient(
            BASE_URL, KEY_ID, SECRET, transport=httpx.MockTransport(recorder), clock=fixed_clock
        )
        with client:
            response = getattr(client, verb)("/provider/v1/tenants", **kwargs)
        assert response.json() == {"ok": True}
        sent = recorder.sent[0]
        assert sent.method == verb.upper()
        assert sent.content == (body if body is not None else b"raw \x00 bytes")
        assert check(as_received(sent)) == KEY_ID

    def test_paths_are_joined_to_a_base_url_with_a_prefix(self) -> None:
        """With base URL `…/provider/v1` the full path as sent is what gets signed."""
        recorder = Recorder()
        transport = httpx.MockTransport(recorder)
        client = ProviderClient(f"{BASE_URL}/provider/v1", KEY_ID, SECRET, transport=transport)
        with client:
            client.get("/tenants")
        sent = recorder.sent[0]
        assert sent.url.raw_path == b"/provider/v1/tenants"
        assert check(as_received(sent), now=float(sent.headers[TIMESTAMP_HEADER])) == KEY_ID

    def test_a_closed_client_sends_nothing(self) -> None:
        """Leaving the `with` block closes the connections."""
        recorder = Recorder()
        with ProviderClient(BASE_URL, KEY_ID, SECRET, transport=httpx.MockTransport(recorder)) as c:
            pass
        with pytest.raises(RuntimeError, match="closed"):
            c.get("/provider/v1/tenants")
        assert recorder.sent == []


def _verifying_app() -> FastAPI:
    """A FastAPI app that verifies every request as the provider API will."""
    app = FastAPI()
    nonces = MemoryNonces()

    @app.api_route("/{rest:path}", methods=["GET", "POST", "PATCH", "DELETE"])
    async def anything(request: Request) -> JSONResponse:
        signed = SignedRequest.from_asgi_scope(request.scope, await request.body())
        try:
            key_id = await verify(
                signed, keys=KEYS, now=NOW, tolerance_seconds=TOLERANCE, claim_nonce=nonces
            )
        except SignatureRejected as rejected:
            return JSONResponse({"code": rejected.code, "detail": rejected.detail}, status_code=401)
        return JSONResponse({"key_id": key_id, "query": dict(request.query_params)})

    return app


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """A real uvicorn server, in a thread, running the verifying app."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # connections queue from now on, so no wait for start-up is needed
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(_verifying_app(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    listener.close()


class TestAgainstARealServer:
    @pytest.mark.parametrize("params", EDGE_CASE_PARAMS)
    def test_query_edge_cases_verify_over_http(
        self, server_url: str, params: list[tuple[str, str]]
    ) -> None:
        """Over real HTTP, awkward queries sent by ProviderClient verify and arrive intact."""
        with ProviderClient(server_url, KEY_ID, SECRET, clock=fixed_clock) as client:
            response = client.get("/provider/v1/tenants", params=params)
        assert response.status_code == 200, response.text
        assert response.json() == {"key_id": KEY_ID, "query": dict(params)}

    @pytest.mark.parametrize("path", EDGE_CASE_PATHS)
    def test_path_edge_cases_verify_over_http(self, server_url: str, path: str) -> None:
        """Over real HTTP, the server's raw path is the path the client signed."""
        with ProviderClient(server_url, KEY_ID, SECRET, clock=fixed_clock) as client:
            response = client.post(path, json={"name": "Zoë"})
        assert response.status_code == 200, response.text

    def test_a_replayed_request_is_refused_over_http(self, server_url: str) -> None:
        """The same signed bytes sent twice are accepted once, then refused as a replay."""
        body = json.dumps({"slug": "acme"}).encode()
        headers = sign_request(
            KEY_ID, SECRET, "POST", "/provider/v1/tenants", body, timestamp=int(NOW)
        )
        with httpx.Client(base_url=server_url) as client:
            first = client.post("/provider/v1/tenants", content=body, headers=headers)
            second = client.post("/provider/v1/tenants", content=body, headers=headers)
        assert first.status_code == 200
        assert second.status_code == 401
        assert second.json()["code"] == "replayed_nonce"

    def test_an_unsigned_request_is_refused_over_http(self, server_url: str) -> None:
        """A request without signature headers is refused with missing_header."""
        with httpx.Client(base_url=server_url) as client:
            response = client.get("/provider/v1/tenants")
        assert response.status_code == 401
        assert response.json()["code"] == "missing_header"
