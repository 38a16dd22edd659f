"""Sending to an OpenTelemetry collector over HTTP: the endpoint and headers from the command line and the
OTEL_EXPORTER_OTLP_* variables, one overall deadline per request (connect, send, every byte of the answer,
redirects), and redirects followed only within the same origin (the body carries prompts, the headers
credentials)."""

from __future__ import annotations

import http.client
import os
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from llmtrace.errors import ExitCode, UserError


def endpoint(explicit: str | None) -> str | None:
    """The traces URL: --otlp, else OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces."""
    if explicit:
        url = explicit
    elif os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    elif os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        url = os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]
    else:
        return None
    if not url.startswith(("http://", "https://")):
        raise UserError(f"bad OTLP endpoint {url!r}: expected http(s)://host:port")
    path = url.partition("://")[2].partition("/")[2]
    return url if path.strip("/") else url.rstrip("/") + "/v1/traces"


def headers(extra: list[str] | None = None) -> dict[str, str]:
    """OTEL_EXPORTER_OTLP_HEADERS (and the traces-only variable): k=v pairs, comma separated; then
    --otlp-header k=v (repeatable), which wins. Raises UserError for a pair without `=`."""
    out = {}
    for var in ("OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"):
        for part in os.environ.get(var, "").split(","):
            k, sep, v = part.partition("=")
            if sep and k.strip():
                out[k.strip()] = urllib.request.unquote(v.strip())
    for pair in extra or []:
        k, sep, v = pair.partition("=")
        if not sep or not k.strip():
            raise UserError(f"bad --otlp-header {pair!r}: expected NAME=VALUE")
        out[k.strip()] = v.strip()
    return out


DEFAULT_TIMEOUT_S = 10.0  # the OpenTelemetry exporters' default


def export_timeout() -> float:
    """The deadline of one export request, in seconds: OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, else
    OTEL_EXPORTER_OTLP_TIMEOUT (milliseconds, as the OpenTelemetry specification has them), else 10 s.
    A value that is not a positive number is ignored, as the SDKs ignore it."""
    for var in ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"):
        try:
            ms = float(os.environ.get(var, ""))
        except ValueError:
            continue
        if ms > 0:
            return ms / 1000
    return DEFAULT_TIMEOUT_S


class _Deadline:
    """One deadline for a whole request (connect, send, every byte of the answer, redirects): a socket's
    own timeout only bounds each read, and a collector that trickles a byte a second never trips it.
    When the time is up, the request's sockets are shut down, which wakes whatever waits on them."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._socks:
                _shut(sock)

    def watch(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._socks.append(sock)
            if self.expired:
                _shut(sock)
        return sock

    def connection(self, cls: Any) -> Any:
        """A factory of `cls` connections whose sockets this deadline watches from their creation (so a
        TLS handshake is bounded too)."""
        def make(host: str, **kwargs: Any) -> Any:
            conn = cls(host, **kwargs)
            create = conn._create_connection
            conn._create_connection = lambda *a, **k: self.watch(create(*a, **k))
            return conn
        return make

    def cancel(self) -> None:
        self._timer.cancel()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _DeadlineHTTP(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline):
        super().__init__()
        self.deadline = deadline

    def http_open(self, req: Any) -> Any:
        return self.do_open(self.deadline.connection(http.client.HTTPConnection), req)


class _DeadlineHTTPS(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline):
        super().__init__()
        self.deadline = deadline

    def https_open(self, req: Any) -> Any:
        return self.do_open(self.deadline.connection(http.client.HTTPSConnection), req, context=self._context)


class _CrossOrigin(Exception):
    def __init__(self, location: str):
        super().__init__(location)
        self.location = location


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(scheme)


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects within the endpoint's origin (scheme, host, port) are followed, the spans posted again
    with the same headers; one to another origin is refused before anything is sent there: the request
    carries the collector's credentials (Authorization, API-key headers) and the spans' prompts."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        if _origin(newurl) != _origin(req.full_url):
            raise _CrossOrigin(newurl)
        return urllib.request.Request(newurl, data=req.data, headers=dict(req.headers), method="POST")


def post(url: str, request: Any, timeout: float | None = None, extra_headers: dict[str, str] | None = None) -> None:
    """Send one export request within one deadline (`timeout` seconds, default export_timeout());
    raises UserError (exit code EXPORT) on any failure."""
    body = request.SerializeToString()
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/x-protobuf", **(extra_headers or {})})
    seconds = export_timeout() if timeout is None else timeout
    deadline = _Deadline(seconds)
    opener = urllib.request.build_opener(_SameOriginRedirects(), _DeadlineHTTP(deadline), _DeadlineHTTPS(deadline))
    try:
        with opener.open(req, timeout=seconds) as resp:
            resp.read()
    except _CrossOrigin as e:
        raise UserError(f"the OTLP endpoint {url} redirects to another host ({e.location}): not followed, it would "
                        "carry the spans and the OTLP headers there; give that URL as the endpoint if you trust it",
                        ExitCode.EXPORT) from None
    except urllib.error.HTTPError as e:
        if deadline.expired:
            raise _late(url, seconds) from None
        try:
            detail = e.read(300).decode("utf-8", "replace").strip().splitlines()
        except (OSError, http.client.HTTPException):
            detail = []
        why = f" ({detail[0][:200]})" if detail else ""
        raise UserError(f"the OTLP endpoint {url} refused the spans: HTTP {e.code}{why}", ExitCode.EXPORT) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        if deadline.expired:
            raise _late(url, seconds) from None
        reason = getattr(e, "reason", e)
        raise UserError(f"cannot reach the OTLP endpoint {url}: {reason}", ExitCode.EXPORT) from None
    finally:
        deadline.cancel()


def _late(url: str, seconds: float) -> UserError:
    return UserError(f"the OTLP endpoint {url} did not answer within {seconds:g}s "
                     "(OTEL_EXPORTER_OTLP_TIMEOUT, in milliseconds, sets the limit)", ExitCode.EXPORT)
