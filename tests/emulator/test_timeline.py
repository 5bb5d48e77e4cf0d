"""Tests of the emulator's timeline: the ``snapshot`` option and changes added at run time.

By default the data is taken at 2024-02-20 06:00 UTC and nothing of it depends on when the tests
run. ``snapshot`` moves every time the emulator serves (lastSeen, firstSeen, the export's
generatedTime and paths, the delta's eventTimestamps and its 14-day bound, the ground truth) to
another instant, or to the current six-hour bucket with ``"now"``, so that a client that computes
``sinceTime`` from the real date (an event source) can be tested. ``POST /_emulator/delta-changes``
(``emu.add_delta_changes()``) adds changes after the snapshot, as a test that watches a source poll
needs. Time is moved with the emulator's clock, never slept.
"""
# pylint: disable=redefined-outer-name,missing-function-docstring,too-many-locals

import datetime
import json
import os
import re
import signal
import subprocess
import sys
import urllib.parse

import pytest

from emulator_helpers import (HERE, FakeClock, VerifyingSession, api, assert_api_error, bearer, derive_delta, download,
                              follow, kb_counts, kb_of)
from mde_emulator import Emulator
from mde_emulator.data import SNAPSHOT
from mde_emulator.findings import bucket_start

BY_MACHINE = "/api/machines/SoftwareVulnerabilitiesByMachine"
FILES = "/api/machines/SoftwareVulnerabilitiesExport"
CHANGES = "/api/machines/SoftwareVulnerabilityChangesByMachine"
UTC = datetime.timezone.utc
OTHER = datetime.datetime(2024, 11, 4, 18, 0, tzinfo=UTC)   # another snapshot, on a six-hour boundary, past
WS_0001 = "ebaba4e7f11fb006804a9b9fb71e76f1b76750f6"         # ws-0001.contoso.local with seed 7
LT_TAGS = "5d41a0c7e3f9b2d8c6a4e1f07b3d9c2a8e6f4b1d"         # lt-tags01.contoso.local, every seed
RHEL = "a38e94d82cb61d22a844df64152b4447e791f297"            # rhel-db01, no KB, every seed
# The time fields of each shape and how they are written.
MACHINE_TIMES = {"lastSeen": "entity", "firstSeen": "entity"}
CAMEL_TIMES = {"lastSeenTimestamp": "space", "firstSeenTimestamp": "space", "eventTimestamp": "event"}
PASCAL_TIMES = {"LastSeenTimestamp": "space7", "FirstSeenTimestamp": "space7"}


def iso(moment):
    return f"{moment:%Y-%m-%dT%H:%M:%S.%f}Z"


def parse(text, form):
    if form == "space":
        return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    if form == "space7":
        return datetime.datetime.strptime(text[:26], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
    if form == "event":
        return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return datetime.datetime.strptime(text[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)


def moved(record, times, offset):
    """``record`` with its times moved by ``offset`` (and written back the same way)."""
    result = dict(record)
    for key, form in times.items():
        if key not in record:
            continue
        moment = parse(record[key], form) + offset
        if form == "space":
            result[key] = f"{moment:%Y-%m-%d %H:%M:%S}"
        elif form == "space7":
            result[key] = f"{moment:%Y-%m-%d %H:%M:%S.%f}{record[key][26:]}"
        elif form == "event":
            result[key] = f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"
        else:
            result[key] = f"{moment:%Y-%m-%dT%H:%M:%S.%f}{record[key][26:]}"
    return result


def sorted_truth(truth):
    return {mid: {kind: sorted(kbs) for kind, kbs in kinds.items()} for mid, kinds in truth.items()}


def changes_since(http, emu, since, page_size=None):
    query = f"?sinceTime={urllib.parse.quote(since)}" + (f"&pageSize={page_size}" if page_size else "")
    return follow(http, emu, CHANGES + query)[0]


@pytest.fixture
def timeline_clock():
    return FakeClock()


# -- the default: exactly as before ------------------------------------------------------------------


def test_default_snapshot_is_unchanged(emu, http):
    assert emu.snapshot == SNAPSHOT == datetime.datetime(2024, 2, 20, 6, 0, tzinfo=UTC)
    assert emu.info["snapshot"] == "2024-02-20T06:00:00Z"
    machines = emu.data["machines"]
    assert machines[WS_0001]["lastSeen"] == "2024-02-19T15:06:59.5615150Z"
    assert machines[WS_0001]["firstSeen"] == "2023-10-11T06:21:15.5615150Z"
    assert machines[LT_TAGS]["lastSeen"] == "2024-02-20T05:20:00.0000000Z"
    assert machines[LT_TAGS]["firstSeen"] == "2022-06-20T06:00:00.0000000Z"
    first = api(http, emu, BY_MACHINE + "?$top=1").json()["value"][0]
    assert first["id"] == f"{WS_0001}_windows_11_10.0.22631.2861_CVE-2024-20090_"
    assert (first["lastSeenTimestamp"], first["firstSeenTimestamp"]) == ("2024-02-19 15:06:59", "2024-01-19 16:52:21")
    body = api(http, emu, FILES).json()
    assert body["generatedTime"] == "2024-02-20T06:00:00Z"
    assert all("/tvm-export/2024-02-20/0600/VaExport/json/" in url for url in body["exportFiles"])
    delta = changes_since(http, emu, "2024-02-06T06:00:00Z")
    assert len(delta) == 118 == emu.export_summary()["delta_records"]
    assert (delta[0]["id"], delta[0]["status"], delta[0]["eventTimestamp"]) == (
        f"{WS_0001}_office_16.0.16731.20504_CVE-2024-20000_", "Updated", "2024-02-07T18:09:49.721Z")
    assert delta[-1]["eventTimestamp"] == "2024-02-20T00:04:34.284Z"
    assert_api_error(api(http, emu, f"{CHANGES}?sinceTime=2024-02-06T05:59:59Z"), 400, "InvalidInput")
    assert not changes_since(http, emu, "2024-02-20T06:00:01Z")            # after the last run: nothing
    assert emu.delta_truth("2024-02-19T23:59:59Z") == {
        "e882f213c2fbdb35a7b9d215dfd930aeb3294ba3": {"new": [], "fixed": ["5034123"], "transient": []},
        "fa1b9208de75150135863cb5d317b2aa4063fa99": {"new": [], "fixed": ["5034768"], "transient": []},
        LT_TAGS: {"new": [], "fixed": ["5002519"], "transient": []}}
    assert emu.delta_changes() == [] and http.get(emu.url + "/_emulator/delta-changes").json() == {"changes": []}


def test_snapshot_values(tmp_path):
    for bad in ("2026-03-02T13:00:00Z", "2026-03-02T12:00:01Z", "yesterday", "", 5):
        with pytest.raises(ValueError):
            Emulator(str(tmp_path), snapshot=bad)
    at = datetime.datetime(2026, 3, 2, 18, 0)                   # naive: UTC
    assert Emulator(str(tmp_path), snapshot=at).snapshot == at.replace(tzinfo=UTC)
    assert Emulator(str(tmp_path), snapshot="2026-03-02T20:00:00+02:00").snapshot == at.replace(tzinfo=UTC)


# -- another snapshot ----------------------------------------------------------------------------------


def test_other_snapshot_moves_every_time(emu, http, tmp_path, timeline_clock):
    """Seed 7 at 2024-11-04 18:00 UTC: the same data as the shared emulator's, every time moved."""
    offset = OTHER - SNAPSHOT
    with Emulator(str(tmp_path), seed=7, snapshot="2024-11-04T18:00:00Z", clock=timeline_clock) as other, \
            VerifyingSession(other.ca_path) as session:
        assert other.snapshot == OTHER and other.info["snapshot"] == "2024-11-04T18:00:00Z"
        mine = other.data["machines"]
        theirs = emu.data["machines"]
        assert list(mine) == list(theirs)
        for mid, machine in theirs.items():
            assert mine[mid] == moved(machine, MACHINE_TIMES, offset), mid
        served = follow(session, other, "/api/machines")[0]
        assert served == [moved(m, MACHINE_TIMES, offset) for m in follow(http, emu, "/api/machines")[0]]
        recent = follow(session, other, "/api/machines?$filter=lastSeen gt 2024-11-03T18:00:00Z")[0]
        assert recent and all(m["lastSeen"] > "2024-11-03T18" for m in recent)
        # The JSON pages, the files and the delta: the same records, times moved.
        records = follow(session, other, BY_MACHINE + "?pageSize=50")[0]
        assert records == [moved(r, CAMEL_TIMES, offset) for r in follow(http, emu, BY_MACHINE)[0]]
        body = api(session, other, FILES).json()
        assert body["generatedTime"] == "2024-11-04T18:00:00Z"
        assert all("/tvm-export/2024-11-04/1800/VaExport/json/" in url for url in body["exportFiles"])
        lines = [line for url in body["exportFiles"] for line in download(session, url)]
        default_lines = [line for url in api(http, emu, FILES).json()["exportFiles"] for line in download(http, url)]
        assert lines == [moved(line, PASCAL_TIMES, offset) for line in default_lines]
        oldest = OTHER - datetime.timedelta(days=14)
        delta = changes_since(session, other, f"{oldest:%Y-%m-%dT%H:%M:%SZ}", page_size=17)
        assert delta == [moved(r, CAMEL_TIMES, offset) for r in changes_since(http, emu, "2024-02-06T06:00:00Z")]
        assert all(r["eventTimestamp"] >= "2024-10-21T18:00:00" for r in delta)
        # The 14-day bound moved with it.
        assert_api_error(api(session, other, f"{CHANGES}?sinceTime={oldest - datetime.timedelta(seconds=1):%Y-%m-%dT%H:%M:%SZ}"),
                         400, "InvalidInput")
        assert_api_error(api(session, other, f"{CHANGES}?sinceTime=2024-02-19T00:00:00Z"), 400, "InvalidInput")
        # The ground truth: the default's, at moved times, and what a client replays from the delta.
        current = follow(session, other, BY_MACHINE + "?pageSize=200000")[0]
        assert kb_counts(current) == other.export_truth() == emu.export_truth()
        for since in (oldest, OTHER - datetime.timedelta(days=3, hours=1), OTHER - datetime.timedelta(minutes=1)):
            truth = other.delta_truth(since)
            assert truth == emu.delta_truth(since - offset)
            assert sorted_truth(truth) == derive_delta(current, changes_since(session, other, iso(since)))
        assert other.delta_truth(iso(oldest)) == other.delta_truth(oldest)
        # Its own export directory: a snapshot never reuses another's files.
        assert other.export_summary()["directory"] != emu.export_summary()["directory"]
        default_here = Emulator(str(tmp_path), seed=7).prepare_export()
        assert default_here["directory"] != other.export_summary()["directory"]
        assert default_here["records"] == other.export_summary()["records"]


# -- snapshot "now" -----------------------------------------------------------------------------------


def test_snapshot_now_serves_the_current_bucket(tmp_path, timeline_clock):
    with Emulator(str(tmp_path), seed=7, snapshot="now", clock=timeline_clock) as emu, \
            VerifyingSession(emu.ca_path) as http:
        now = emu.now()                    # the clock has not moved: the wall clock at start
        assert emu.snapshot == bucket_start(now) and emu.snapshot.hour % 6 == 0
        assert emu.snapshot <= now < emu.snapshot + datetime.timedelta(hours=6)
        assert abs(datetime.datetime.now(UTC) - now) < datetime.timedelta(minutes=5)
        text = f"{emu.snapshot:%Y-%m-%dT%H:%M:%SZ}"
        assert emu.info["snapshot"] == text and api(http, emu, FILES).json()["generatedTime"] == text
        machines = emu.data["machines"]
        assert all(m["lastSeen"] < text for m in machines.values())
        assert max(m["lastSeen"] for m in machines.values()) > f"{emu.snapshot - datetime.timedelta(hours=1):%Y-%m-%dT%H}"
        # An event source's reads: six hours back by default, at most 14 days back.
        six = now - datetime.timedelta(hours=6)
        recent = changes_since(http, emu, iso(six))
        everything = changes_since(http, emu, iso(now - datetime.timedelta(days=14)))
        assert recent == [r for r in everything if r["eventTimestamp"] >= iso(bucket_start(six))]
        assert len(everything) == emu.export_summary()["delta_records"]
        assert_api_error(api(http, emu, f"{CHANGES}?sinceTime={iso(emu.snapshot - datetime.timedelta(days=14, seconds=1))}"),
                         400, "InvalidInput")
        current = follow(http, emu, BY_MACHINE + "?pageSize=200000")[0]
        for since in (now - datetime.timedelta(days=14), now - datetime.timedelta(days=2), six):
            assert sorted_truth(emu.delta_truth(since)) == derive_delta(current, changes_since(http, emu, iso(since)))


# -- changes added at run time --------------------------------------------------------------------------


def _pick(emu):
    """Three Windows devices: (one, a KB that applies to it and it does not miss), (another, a KB it misses),
    (a third, a KB it misses)."""
    data = emu.dataset
    windows = [m["id"] for m in data.machines.own() if m["osPlatform"].startswith("Windows")]
    new = next((mid, kb) for mid in windows for kb in data.applicable_kbs(mid) if kb not in data.machine_missing[mid])
    fixed = next((mid, data.machine_missing[mid][0]) for mid in windows if mid != new[0] and data.machine_missing[mid])
    move = next((mid, data.machine_missing[mid][-1]) for mid in windows
                if mid not in (new[0], fixed[0]) and data.machine_missing[mid])
    return new, fixed, move


def test_added_changes_in_the_delta_and_the_truth(tmp_path, timeline_clock):  # pylint: disable=too-many-statements
    """A source polls; a test adds a New, a Fixed and an RBAC move; the next poll sees them, and every
    view of the state agrees (getmissingkbs, the export's pages and files, export_truth, delta_truth)."""
    with Emulator(str(tmp_path), seed=7, snapshot="now", clock=timeline_clock) as emu, \
            VerifyingSession(emu.ca_path) as http:
        (new_mid, new_kb), (fixed_mid, fixed_kb), (move_mid, move_kb) = _pick(emu)
        poll = emu.now()
        before = changes_since(http, emu, iso(poll - datetime.timedelta(hours=6)))
        software = {sid: dict(kbs) for sid, kbs in emu.dataset.software_missing.items()}
        timeline_clock.advance(600)
        answer = http.post(emu.url + "/_emulator/delta-changes", json={"changes": [
            {"device_id": new_mid, "kb": new_kb, "status": "New"},
            {"device_id": emu.data["machines"][fixed_mid]["computerDnsName"], "kb": f"KB{fixed_kb}", "status": "Fixed",
             "rbac_move": False},
            {"device_id": move_mid, "kb": int(move_kb), "status": "New", "rbac_move": True}]})
        assert answer.status_code == 200, answer.text
        at = emu.now()
        added = answer.json()["changes"]
        assert [(c["device_id"], c["kb"], c["status"], c["rbac_move"]) for c in added] == [
            (new_mid, new_kb, "New", False), (fixed_mid, fixed_kb, "Fixed", False), (move_mid, move_kb, None, True)]
        stamp = f"{at:%Y-%m-%dT%H:%M:%S}.{at.microsecond // 1000:03d}Z"
        assert {c["event_timestamp"] for c in added} == {stamp} and added == emu.delta_changes()
        # The next poll, since the last one: the runs of the bucket, then the added changes.
        after = changes_since(http, emu, iso(poll))
        fresh = [r for r in after if r["eventTimestamp"] == stamp]
        assert after[len(after) - len(fresh):] == fresh and fresh
        assert changes_since(http, emu, iso(poll), page_size=1) == after        # paged, the same
        news = [r for r in fresh if r["deviceId"] == new_mid]
        assert news and {(kb_of(r), r["status"]) for r in news} == {(new_kb, "New")}
        fixes = [r for r in fresh if r["deviceId"] == fixed_mid]
        assert fixes and {(kb_of(r), r["status"]) for r in fixes} == {(fixed_kb, "Fixed")}
        group = emu.data["machines"][move_mid]["rbacGroupName"]
        pairs = [r for r in fresh if r["deviceId"] == move_mid]
        assert pairs and [(r["status"], r["rbacGroupName"]) for r in pairs] == [("Fixed", "Unassigned"), ("New", group)] \
            * (len(pairs) // 2)
        assert {kb_of(r) for r in pairs} == {move_kb} and pairs[0]["id"] == pairs[1]["id"]
        whole = changes_since(http, emu, iso(poll - datetime.timedelta(hours=6)))
        assert whole == before + fresh
        # A read since a later bucket does not return them; one since before their bucket does.
        timeline_clock.advance(6 * 3600)
        assert not changes_since(http, emu, iso(emu.now()))
        assert changes_since(http, emu, iso(bucket_start(at))) == [
            r for r in whole if r["eventTimestamp"] >= iso(bucket_start(at))[:23]]
        # Every view of the state agrees.
        headers = bearer(emu)
        missing = {mid: {kb["id"] for kb in http.get(f"{emu.url}/api/machines/{mid}/getmissingkbs",
                                                     headers=headers).json()["value"]}
                   for mid in (new_mid, fixed_mid, move_mid)}
        assert new_kb in missing[new_mid] and fixed_kb not in missing[fixed_mid] and move_kb in missing[move_mid]
        truth = emu.export_truth()
        for mid, kbs in missing.items():
            assert set(truth.get(mid, {})) == kbs == {kb["id"] for kb in emu.data["machines"][mid]["missing_kbs"]}
        current = follow(http, emu, BY_MACHINE + "?pageSize=200000")[0]
        assert kb_counts(current) == truth
        urls = api(http, emu, FILES).json()["exportFiles"]
        assert kb_counts([line for url in urls for line in download(http, url)], "DeviceId",
                         "RecommendedSecurityUpdateId") == truth
        assert emu.export_summary()["delta_records"] == len(changes_since(http, emu, iso(emu.snapshot - datetime.timedelta(days=14))))
        for sid, kbs in emu.dataset.software_missing.items():
            names = {emu.dataset.software[sid]["name"]}
            expected = dict(software[sid])
            for mid, kb, step in ((new_mid, new_kb, 1), (fixed_mid, fixed_kb, -1)):
                if sid in emu.dataset.machine_software[mid] and names & set(emu.dataset.kbs[kb]["productsNames"]):
                    expected[kb] = expected.get(kb, 0) + step
            assert dict(kbs) == {kb: n for kb, n in expected.items() if n}, sid
        truth_since = emu.delta_truth(iso(poll))
        assert new_kb in truth_since[new_mid]["new"]
        assert fixed_kb in truth_since[fixed_mid]["fixed"]
        assert move_kb not in {kb for kinds in truth_since.get(move_mid, {}).values() for kb in kinds}   # cancelled
        for since in (poll, poll - datetime.timedelta(days=13), bucket_start(at)):
            assert sorted_truth(emu.delta_truth(since)) == derive_delta(current, changes_since(http, emu, iso(since)))
        assert http.post(emu.url + "/_emulator/delta-truth", json={"since": iso(poll)}).json() == truth_since


def test_added_new_and_fixed_of_any_catalog_kb(tmp_path, timeline_clock):
    """A KB the device had no finding of (here a Windows rollup on a Linux device) made New, then Fixed:
    a transient of the range; the Python method and the admin route add the same."""
    with Emulator(str(tmp_path), seed=7, snapshot="2024-11-04T18:00:00Z", clock=timeline_clock) as emu, \
            VerifyingSession(emu.ca_path) as http:
        start = OTHER + datetime.timedelta(hours=1)
        assert RHEL not in emu.export_truth()
        added = emu.add_delta_changes([{"device_id": RHEL, "kb": "5034763", "status": "New", "at": iso(start)}])
        assert added[0]["at"] == iso(start)
        headers = bearer(emu)
        served = http.get(f"{emu.url}/api/machines/{RHEL}/getmissingkbs", headers=headers).json()["value"]
        assert [kb["id"] for kb in served] == ["5034763"]
        assert emu.export_truth([RHEL]) == {RHEL: {"5034763": 1}}
        record = [r for r in follow(http, emu, BY_MACHINE)[0] if r["deviceId"] == RHEL and kb_of(r)]
        assert len(record) == 1 and record[0]["softwareName"] == "kernel"
        assert record[0]["firstSeenTimestamp"] == f"{start:%Y-%m-%d %H:%M:%S}"
        response = http.post(emu.url + "/_emulator/delta-changes", json={"changes": [
            {"device_id": RHEL, "kb": "5034763", "status": "Fixed", "at": iso(start + datetime.timedelta(minutes=5))}]})
        assert response.status_code == 200, response.text
        assert http.get(f"{emu.url}/api/machines/{RHEL}/getmissingkbs", headers=headers).json()["value"] == []
        assert RHEL not in emu.export_truth()
        changes = changes_since(http, emu, iso(OTHER))
        mine = [(r["status"], r["eventTimestamp"]) for r in changes if r["deviceId"] == RHEL]
        assert mine == [("New", "2024-11-04T19:00:00.000Z"), ("Fixed", "2024-11-04T19:05:00.000Z")]
        assert emu.delta_truth(OTHER)[RHEL] == {"new": [], "fixed": [], "transient": ["5034763"]}
        assert RHEL not in emu.delta_truth(start + datetime.timedelta(hours=6))
        current = follow(http, emu, BY_MACHINE + "?pageSize=200000")[0]
        assert sorted_truth(emu.delta_truth(OTHER)) == derive_delta(current, changes)
        assert len(http.get(emu.url + "/_emulator/delta-changes").json()["changes"]) == 2


def test_added_changes_are_checked(tmp_path, timeline_clock):
    with Emulator(str(tmp_path), seed=7, snapshot="now", clock=timeline_clock) as emu, \
            VerifyingSession(emu.ca_path) as http:
        (new_mid, new_kb), (fixed_mid, fixed_kb), dummy = _pick(emu)
        now = emu.now()
        bad = [
            [{"device_id": fixed_mid, "kb": fixed_kb, "status": "New"}],                 # misses it already
            [{"device_id": new_mid, "kb": new_kb, "status": "Fixed"}],                   # does not miss it
            [{"device_id": new_mid, "kb": new_kb, "rbac_move": True}],                   # no finding to move
            [{"device_id": "no-such-device", "kb": new_kb, "status": "New"}],
            [{"device_id": new_mid, "kb": "9999999", "status": "New"}],                  # not in the catalog
            [{"device_id": new_mid, "kb": new_kb, "status": "Updated"}],
            [{"device_id": new_mid, "status": "New"}],
            [{"device_id": new_mid, "kb": new_kb, "status": "New", "colour": "red"}],
            [{"device_id": new_mid, "kb": new_kb, "status": "New", "at": iso(emu.snapshot - datetime.timedelta(seconds=1))}],
            [{"device_id": new_mid, "kb": new_kb, "status": "New", "at": iso(now + datetime.timedelta(minutes=1))}],
            [{"device_id": new_mid, "kb": new_kb, "status": "New"},                       # all or none
             {"device_id": new_mid, "kb": new_kb, "status": "New"}],
            [],
        ]
        for changes in bad:
            response = http.post(emu.url + "/_emulator/delta-changes", json={"changes": changes})
            assert response.status_code == 400, (changes, response.text)
            assert "error" in response.json()
        assert http.post(emu.url + "/_emulator/delta-changes", json={}).status_code == 400
        assert emu.delta_changes() == [] and new_kb not in emu.dataset.machine_missing[new_mid]
        emu.add_delta_changes([{"device_id": new_mid, "kb": new_kb, "status": "New"}])
        with pytest.raises(ValueError):      # before the last added change: changes come in time order
            emu.add_delta_changes([{"device_id": fixed_mid, "kb": fixed_kb, "status": "Fixed",
                                    "at": now - datetime.timedelta(seconds=1)}])
        assert len(emu.delta_changes()) == 1


def test_cli_snapshot(tmp_path):
    state = str(tmp_path / "cli-state")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"snapshot": "2025-01-01T00:00:00Z", "seed": 7}))
    env = dict(os.environ, PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))
    command = [sys.executable, "-m", "mde_emulator", "--state-dir", state, "--config", str(config),
               "--snapshot", "2026-03-02T12:00:00Z"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True) as process:
        try:
            info = json.loads(process.stdout.readline())
            assert info["snapshot"] == "2026-03-02T12:00:00Z"       # the flag overrides the config
            with VerifyingSession(info["ca_path"]) as session:
                machine = session.get(info["url"] + "/_emulator/data").json()["machines"][LT_TAGS]
                assert machine["lastSeen"] == "2026-03-02T11:20:00.0000000Z"
        finally:
            process.send_signal(signal.SIGTERM)
            rest, stderr = process.communicate(timeout=10)
        assert process.returncode == 0, stderr
        assert rest == ""
    bad = subprocess.run([sys.executable, "-m", "mde_emulator", "--state-dir", state, "--snapshot", "2026-03-02T13:00:00Z"],
                         env=env, capture_output=True, text=True, timeout=30, check=False)
    assert bad.returncode == 2 and re.search("six-hour", bad.stderr)
