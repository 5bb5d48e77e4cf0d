"""Helpers shared by the emulator's tests (a plain module: no test module is imported as a library)."""

import os
import re

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class VerifyingSession(requests.Session):  # pylint: disable=too-few-public-methods
    """Forces verify per request: a session-level verify loses against REQUESTS_CA_BUNDLE."""

    def __init__(self, verify):
        super().__init__()
        self._forced_verify = verify

    def request(self, method, url, *args, **kwargs):  # pylint: disable=arguments-differ
        """requests' request(), with this session's verify unless the call gives one."""
        kwargs.setdefault("verify", self._forced_verify)
        return super().request(method, url, *args, **kwargs)


class FakeClock:  # pylint: disable=too-few-public-methods
    """Drives the emulator's 60-second windows (and the export's SAS expiry) without sleeping."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        """Move time forward by ``seconds``."""
        self.now += seconds


def bearer(emu, client="secret", **kwargs):
    """An Authorization header with a token of ``client`` (issued without the token endpoint)."""
    return {"Authorization": "Bearer " + emu.issue_token(client, **kwargs)["access_token"]}


def api(http, emu, path, client="secret", **kwargs):
    """GET an API path with a token of ``client`` (or the given headers)."""
    headers = kwargs.pop("headers", None) or bearer(emu, client)
    return http.get(emu.url + path, headers=headers, **kwargs)


def assert_api_error(response, status, code, message=None):
    """The response is Defender's error body with that status and code (and message)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "target"}
    assert body["error"]["code"] == code
    assert GUID.match(body["error"]["target"])
    if message is not None:
        assert body["error"]["message"] == message
