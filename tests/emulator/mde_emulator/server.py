"""HTTPS server: a ThreadingHTTPServer speaking HTTP/1.1 with keep-alive over TLS.

The TLS handshake runs in the per-connection thread (not in accept()), so a
slow or broken client cannot stall the listener.
"""

import base64
import binascii
import http.server
import json
import re
import socket
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse

from . import admin
from .defender import Request, route
from .entra import TokenError, error_body as entra_error_body
from .export import Stream

MAX_BODY = 1 << 20
HOST_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)(:\d{1,5})?$")
TENANT_ROUTES = [
    (re.compile(r"^/([^/]+)/v2\.0/\.well-known/openid-configuration$"), "oidc", True),
    (re.compile(r"^/([^/]+)/\.well-known/openid-configuration$"), "oidc", False),
    (re.compile(r"^/([^/]+)/discovery/v2\.0/keys$"), "jwks", True),
    (re.compile(r"^/([^/]+)/discovery/keys$"), "jwks", False),
    (re.compile(r"^/([^/]+)/oauth2/v2\.0/token$"), "token", True),
    (re.compile(r"^/([^/]+)/oauth2/token$"), "token", False),
]


class EmulatorHTTPServer(http.server.ThreadingHTTPServer):
    """One thread per connection; TLS wrapping without handshake in accept()."""

    daemon_threads = True          # idle keep-alive connections must not block shutdown
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, ssl_context, emulator, role="api"):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.ssl_context = ssl_context
        self.emulator = emulator
        self.role = role  # "api" (Defender, Entra, admin) or "files" (the export's blob host)
        self._connections = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, Handler)

    def server_bind(self):
        # HTTPServer.server_bind() resolves the FQDN of the host, which can take seconds; skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def get_request(self):
        sock, address = self.socket.accept()
        return self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request, client_address):
        if self.emulator.verbose:
            super().handle_error(request, client_address)

    def track(self, sock, add):
        """Remember open connections so that stop() can close them."""
        with self._connections_lock:
            if add:
                self._connections.add(sock)
            else:
                self._connections.discard(sock)

    def close_connections(self):
        """Shut down open keep-alive connections so their threads and the clients notice."""
        with self._connections_lock:
            connections = list(self._connections)
        for sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Handler(http.server.BaseHTTPRequestHandler):
    """Routes each request to the admin, Defender API or Entra handlers."""

    protocol_version = "HTTP/1.1"
    server_version = "mde-emulator/1.0"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this
    # Headers and body go out in separate writes; with Nagle's algorithm the body would
    # wait for the client's delayed ACK (~40 ms per request on keep-alive connections).
    disable_nagle_algorithm = True

    # -- connection lifecycle -------------------------------------------------------------------

    def setup(self):
        self.request.settimeout(10)
        self.request.do_handshake()  # failures propagate to handle_error() and close the socket
        self.server.emulator.traffic.connection_accepted(files=self.server.role == "files")
        self._client_traffic = False
        self.server.track(self.request, True)
        super().setup()

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.track(self.request, False)

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        if self.server.emulator.verbose:
            sys.stderr.write(f"mde-emulator: {self.address_string()} {format % args}\n")

    # -- plumbing -------------------------------------------------------------------------------

    def _base(self):
        """The URL base the client used (localhost or 127.0.0.1), for @odata links and discovery.

        Only the emulator's own names are honoured, so a forged Host header cannot redirect links.
        """
        emulator = self.server.emulator
        match = HOST_RE.match(self.headers.get("Host", ""))
        if match and match.group(1).strip("[]").lower() in ("127.0.0.1", "localhost", "::1", emulator.host.lower()):
            return f"https://{match.group(1)}:{emulator.port}"
        return emulator.url

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
                if sum(len(c) for c in chunks) > MAX_BODY:
                    raise ValueError("body too large")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length) if length else b""

    def _start(self, status, headers):
        """The status line, Server and Date; returns the other headers. The file host sends Azure's
        Server and its clock's Date, which must replace http.server's, not come as a second header."""
        headers = dict(headers or {})
        self.log_request(status)
        self.send_response_only(status)
        self.send_header("Server", headers.pop("Server", None) or self.version_string())
        self.send_header("Date", headers.pop("Date", None) or self.date_time_string())
        return headers

    def _send(self, status, body, headers=None, content_type="application/json; charset=utf-8", drop_after=None):  # pylint: disable=too-many-arguments
        if isinstance(body, Stream):
            self._send_stream(status, body, headers, content_type, drop_after)
            return
        if isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode("utf-8")
            content_type = "text/plain; charset=utf-8"
        else:
            data = json.dumps(body).encode("utf-8")
        headers = self._start(status, headers)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_stream(self, status, body, headers, content_type, drop_after):  # pylint: disable=too-many-arguments
        """A body streamed from the export's files; ``drop_after``: close the connection after that many bytes."""
        headers = self._start(status, headers)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(body.length))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        if drop_after is not None:
            body.truncate(drop_after)
        for chunk in body.chunks():
            self.wfile.write(chunk)
        if drop_after is not None:
            self.close_connection = True
            self.wfile.flush()
            try:
                self.request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _file_host(self, raw_path):
        """The export's blob host (a second host name and port): SAS-signed downloads only."""
        emulator = self.server.emulator
        status, headers, body, content_type, what = emulator.defender.export.serve(self.command, raw_path,
                                                                                   self.headers)
        length = body.length if isinstance(body, Stream) else len(body)
        drop_after = None
        if status in (200, 206) and self.command == "GET" and length and emulator.traffic.take_file_truncate():
            drop_after = length // 2
        sent = 0 if self.command == "HEAD" else (drop_after if drop_after is not None else length)
        emulator.traffic.file_done(self.command, raw_path, status, what, sent)
        self._send(status, body, headers, content_type, drop_after)

    def _dispatch(self):
        raw_path = self.path
        path, dummy, query = raw_path.partition("?")
        if self.server.role == "files":
            try:
                self._read_body()
            except ValueError:
                self.close_connection = True
            self._file_host(raw_path)
            return
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send(413, {"error": "request body too large or malformed"})
            return
        if path == "/_emulator" or path.startswith("/_emulator/"):
            self._admin(path, body)
            return
        if not self._client_traffic:
            # Separately counted so that a harness polling /_emulator/stats does not blur
            # whether the client under test reuses its connections.
            self._client_traffic = True
            self.server.emulator.traffic.connection_accepted(client_traffic=True)
        route_name, ids = route(path)
        if route_name is not None:
            self._api(raw_path, path, query=query, route_name=route_name, ids=ids)
            return
        for pattern, kind, v2 in TENANT_ROUTES:
            match = pattern.match(path)
            if match:
                if kind == "token":
                    self._token(raw_path, urllib.parse.unquote(match.group(1)), v2, body)
                else:
                    self._discovery(raw_path, kind, urllib.parse.unquote(match.group(1)), v2)
                return
        self.server.emulator.traffic.other_done(self.command, raw_path, 404)
        self._send(404, {"error": "not_found", "error_description": f"No such endpoint: {path}"})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch

    # -- Defender API ---------------------------------------------------------------------------

    def _authenticate(self):
        """(claims or None, failure reason, client id, rate-limit key) for the bearer token."""
        authorization = self.headers.get("Authorization", "")
        token = authorization[7:].strip() if authorization[:7].lower() == "bearer " else None
        claims, reason = self.server.emulator.entra.validate(token)
        client_id = claims.get("appid") if claims else None
        # Rate limits apply per application + tenant, as the Defender docs state.
        return claims, reason, client_id, (client_id or "anonymous", claims.get("tid") if claims else None)

    def _api(self, raw_path, path, *, query, route_name, ids):  # pylint: disable=too-many-arguments,too-many-locals
        emulator = self.server.emulator
        if emulator.traffic.take_revocation():
            emulator.revoke_tokens()  # before this request's token is checked
        claims, reason, client_id, rate_key = self._authenticate()
        plan = emulator.traffic.api_begin(raw_path, rate_key, route_name)
        # Stats are recorded before the response is written, so a client that reads
        # /_emulator/stats right after its response sees its own request counted.
        status, recorded = 500, False
        try:
            if plan.latency_s:
                time.sleep(plan.latency_s)  # the server is the one being slow
            if plan.action == "drop":
                status = None
                self.close_connection = True  # closed by the server with no response at all
                return
            request = Request(ids=ids, query=query, path=path, base=self._base())
            status, data, headers, content_type = emulator.defender.respond(plan, self.command, route_name, request=request,
                                                                            auth=(claims, reason))
            emulator.traffic.api_end(self.command, raw_path, route_name, status, client_id)
            recorded = True
            self._send(status, data, headers, content_type)
        finally:
            if not recorded:
                emulator.traffic.api_end(self.command, raw_path, route_name, status, client_id)

    # -- Entra ----------------------------------------------------------------------------------

    def _discovery(self, raw_path, kind, tenant, v2):
        emulator = self.server.emulator
        try:
            if kind == "jwks":
                if emulator.entra.resolve_tenant(tenant) is None:
                    raise emulator.entra.tenant_not_found(tenant)
                status, body = 200, emulator.entra.jwks()
            else:
                status, body = 200, emulator.entra.openid_configuration(tenant, self._base(), v2)
        except TokenError as exc:
            status, body = 400, entra_error_body(exc.error, exc.code, exc.text)
        emulator.traffic.discovery_done(self.command, raw_path, kind, status)
        self._send(status, body)

    def _basic_auth(self):
        """client_secret_basic: (client id, secret) from an Authorization: Basic header."""
        header = self.headers.get("Authorization", "")
        if header[:6].lower() != "basic ":
            return None
        try:
            user, dummy, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(password)

    def _token(self, raw_path, tenant, v2, body):
        emulator = self.server.emulator
        # First occurrence of a repeated parameter wins.
        form = dict(reversed(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)))
        plan = emulator.traffic.token_plan(raw_path)
        if plan.latency_s:
            time.sleep(plan.latency_s)
        # Entra echoes the client's correlation id (MSAL sends client-request-id).
        correlation = self.headers.get("client-request-id")
        correlation = correlation if emulator.entra.is_guid(correlation) else None
        headers = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}
        if correlation:
            headers["client-request-id"] = correlation
        client_key = None
        if plan.action == "respond":
            status = plan.status
            if plan.retry_after is not None:
                headers["Retry-After"] = str(plan.retry_after)
            result = plan.body if plan.body is not None else entra_error_body(
                "temporarily_unavailable", 90033, "A transient error has occurred. Please try again.", correlation)
        else:
            try:
                client_key, result = self._issue(tenant, v2, form)
                status = 200
            except TokenError as exc:
                status, result = exc.status, entra_error_body(exc.error, exc.code, exc.text, correlation)
        emulator.traffic.token_done(self.command, raw_path, client_key or form.get("client_id"), status,
                                    form.get("client_id"))
        self._send(status, result, headers)

    def _issue(self, tenant, v2, form):
        emulator = self.server.emulator
        if self.command != "POST":
            raise TokenError(400, "invalid_request", 900561,
                             f"The endpoint only accepts POST requests. Received a {self.command} request.")
        # Any of the certificate's names is a valid audience for a client assertion.
        bases = {self._base(), emulator.url} | {f"https://{host}:{emulator.port}"
                                                for host in ("localhost", "127.0.0.1", "[::1]")}
        return emulator.entra.token(tenant, form, bases, v2=v2, basic_auth=self._basic_auth(),
                                    lifetime_s=emulator.traffic.get("token_lifetime_s"))

    # -- admin ----------------------------------------------------------------------------------

    def _admin(self, path, body):
        try:
            payload = json.loads(body.decode("utf-8")) if body.strip() else {}
        except ValueError:
            self._send(400, {"error": "request body is not JSON"})
            return
        self._send(*admin.handle(self.server.emulator, self.command, path, payload))


def make_ssl_context(cert_path, key_path):
    """Server-side TLS context (TLS 1.2+) with the emulator's certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    return context
