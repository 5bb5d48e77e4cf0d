"""Helpers shared by the emulator's tests (a plain module: no test module is imported as a library)."""

import collections
import gzip
import json
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


# -- the vulnerability export (test_export.py, test_timeline.py) ----------------------------------------


def follow(http, emu, path, headers=None):
    """Every record of a paged export route, following @odata.nextLink; (records, pages)."""
    headers = headers or bearer(emu)
    records, pages, url = [], 0, emu.url + path
    while url:
        response = http.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        records.extend(body["value"])
        pages += 1
        url = body.get("@odata.nextLink")
    return records, pages


def kb_of(record, key="recommendedSecurityUpdateId"):
    """The KB number of a record ("5034123"), or None; the id comes as "5034123", 5034123 or "KB5034123"."""
    value = record.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        digits = value[2:] if value[:2].upper() == "KB" else value
        return digits if digits.isdigit() else None
    return None


def kb_counts(records, device_key="deviceId", kb_key="recommendedSecurityUpdateId"):
    """device id -> {kb: number of records}, from records."""
    result = {}
    for record in records:
        kb = kb_of(record, kb_key)
        if kb is not None:
            per_device = result.setdefault(record[device_key], {})
            per_device[kb] = per_device.get(kb, 0) + 1
    return result


def download(http, url, **kwargs):
    """The records of one part file of the files route (gzip JSON lines)."""
    response = http.get(url, **kwargs)
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in gzip.decompress(response.content).decode("utf-8").splitlines()]


def derive_delta(current, changes):
    """What a client makes of the export and the delta: device -> {"new", "fixed", "transient"} KB lists.

    A Fixed and a New of one record at one eventTimestamp with different device groups are an RBAC move
    and cancel out. A record's first remaining change says whether it was open before the range (New: no),
    its last one whether it is open now; records without a change are as in the current export.
    """
    by_record = collections.defaultdict(list)
    for record in changes:
        by_record[record["id"]].append(record)
    in_export = {r["id"]: r for r in current}
    kb_state = collections.defaultdict(lambda: [False, False, False])   # (device, kb) -> before, now, new seen
    for rid, record in in_export.items():
        if rid not in by_record and kb_of(record):
            kb_state[(record["deviceId"], kb_of(record))][:2] = [True, True]
    for rid, events in by_record.items():
        kb = kb_of(events[0])
        remaining = []
        for stamp in sorted({e["eventTimestamp"] for e in events}):
            group = [e for e in events if e["eventTimestamp"] == stamp]
            fixed = [e for e in group if e["status"] == "Fixed"]
            new = [e for e in group if e["status"] == "New"]
            while fixed and new and fixed[0]["rbacGroupName"] != new[0]["rbacGroupName"]:
                group.remove(fixed.pop(0))
                group.remove(new.pop(0))
            remaining.extend(group)
        changes_only = [e["status"] for e in remaining if e["status"] != "Updated"]
        before = not remaining or remaining[0]["status"] != "New"
        now = changes_only[-1] == "New" if changes_only else before
        assert now == (rid in in_export), (rid, [e["status"] for e in events])   # the delta ends at the export
        if kb is not None:
            state = kb_state[(events[0]["deviceId"], kb)]
            state[0] |= before
            state[1] |= now
            state[2] |= "New" in changes_only
    result = {}
    for (mid, kb), (before, now, new_seen) in sorted(kb_state.items()):
        kind = "new" if now and not before else "fixed" if before and not now else \
            "transient" if new_seen and not before and not now else None
        if kind:
            result.setdefault(mid, {"new": [], "fixed": [], "transient": []})[kind].append(kb)
    return result
