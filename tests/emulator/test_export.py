"""Tests of the emulator's vulnerability export: the JSON pages, the files and their host, the delta.

They pin the contract that the collection's export reader (and its benchmarks) rely on: paging,
the record shapes, the signed links, the faults, and above all the ground truth: the KBs that the
export says a device misses are the KBs that getmissingkbs says it misses, and ``emu.export_truth()``
/ ``emu.delta_truth()`` agree with what is served. The small seeded emulator (``emu`` of conftest.py,
shared with test_emulator.py) serves most of them; one test builds a fleet of 2,000 devices (a few
seconds). Time is moved with the emulator's clock, never slept.
"""
# pylint: disable=redefined-outer-name,missing-function-docstring,too-many-locals

import collections
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import urllib.parse

import pytest
import requests

from emulator_helpers import (HERE, FakeClock, VerifyingSession, api, assert_api_error, bearer, derive_delta,
                              download, follow, kb_counts, kb_of)
from mde_emulator import Emulator
from mde_emulator import export as export_module
from mde_emulator import fleet as fleet_module
from mde_emulator.data import LINUX_MACHINES
from mde_emulator.findings import MOVED_HOSTS, OLDEST_SINCE

BY_MACHINE = "/api/machines/SoftwareVulnerabilitiesByMachine"
FILES = "/api/machines/SoftwareVulnerabilitiesExport"
CHANGES = "/api/machines/SoftwareVulnerabilityChangesByMachine"
OLDEST = f"{OLDEST_SINCE:%Y-%m-%dT%H:%M:%SZ}"   # the oldest sinceTime the delta accepts (14 days back)
CAMEL = re.compile(r"^[a-z][A-Za-z]*$")
PASCAL = re.compile(r"^[A-Z][A-Za-z]*$")


def export_records(http, emu):
    return follow(http, emu, BY_MACHINE + "?pageSize=200000")[0]


def export_list(http, emu, hours=1):
    response = api(http, emu, f"{FILES}?sasValidHours={hours}")
    assert response.status_code == 200, response.text
    return response.json()["exportFiles"]


def with_query(url, **changes):
    """``url`` with some query parameters replaced."""
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    query.update(changes)
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def assert_blob_error(response, status, code):
    assert response.status_code == status, (response.status_code, response.headers.get("x-ms-error-code"))
    assert response.headers["x-ms-error-code"] == code
    assert f"<Code>{code}</Code>" in response.content.decode("utf-8-sig")


# -- the JSON route --------------------------------------------------------------------------------


def test_json_export_pages_with_an_opaque_skiptoken(emu, http):
    everything = export_records(http, emu)
    total = emu.export_summary()["records"]
    assert len(everything) == total > 100
    first = api(http, emu, BY_MACHINE + "?pageSize=7").json()
    assert first["@odata.context"] == (
        emu.url + "/api/$metadata#Collection(microsoft.windowsDefenderATP.api.AssetVulnerability)")
    assert first["value"] == everything[:7]
    link = urllib.parse.urlsplit(first["@odata.nextLink"])
    assert f"{link.scheme}://{link.netloc}" == emu.url and link.path == BY_MACHINE
    query = dict(urllib.parse.parse_qsl(link.query))
    assert query["pagesize"] == "7" and query["$skiptoken"]
    records, pages = follow(http, emu, BY_MACHINE + "?pageSize=7")
    assert records == everything and pages == -(-total // 7)
    ids = [r["id"] for r in everything]
    assert len(set(ids)) == len(ids)                 # every record once
    assert emu.stats()["export_records_served"]["software_vulnerabilities_by_machine"] == 7 + 2 * total


def test_json_export_records_are_camel_case(emu, http):
    record = api(http, emu, BY_MACHINE + "?$top=1").json()["value"][0]
    for key in ("id", "deviceId", "deviceName", "rbacGroupName", "osPlatform", "osVersion", "softwareVendor",
                "softwareName", "softwareVersion", "cveId", "vulnerabilitySeverityLevel",
                "recommendedSecurityUpdate", "recommendedSecurityUpdateId", "lastSeenTimestamp",
                "firstSeenTimestamp", "exploitabilityLevel", "recommendationReference"):
        assert key in record
    for record in export_records(http, emu):
        assert all(CAMEL.match(key) for key in record), record
        assert record["id"].startswith(record["deviceId"] + "_")
        assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", record["lastSeenTimestamp"])
        assert "status" not in record and "eventTimestamp" not in record


def test_json_export_top_and_page_size_bounds(emu, http):
    everything = export_records(http, emu)
    top = api(http, emu, BY_MACHINE + "?$top=3&pageSize=2").json()
    assert top["value"] == everything[:3] and "@odata.nextLink" not in top
    whole = api(http, emu, BY_MACHINE + f"?$top={len(everything) + 5}").json()
    assert whole["value"] == everything and "@odata.nextLink" not in whole
    assert "@odata.nextLink" not in api(http, emu, BY_MACHINE + "?pageSize=200000").json()
    for bad in ("0", "-1", "200001", "abc", "1.5"):
        assert_api_error(api(http, emu, f"{BY_MACHINE}?pageSize={bad}"), 400, "ODataError")
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(
        api(http, emu, BY_MACHINE + "?pageSize=7").json()["@odata.nextLink"]).query)["$skiptoken"][0]
    assert_api_error(api(http, emu, f"{BY_MACHINE}?pageSize=7&$skiptoken=x{token}"), 400, "ODataError")
    assert export_module.DEFAULT_PAGE_SIZE == 50000 and export_module.MAX_PAGE_SIZE == 200000


def test_json_export_malformed_page_is_cut(emu, http):
    emu.configure(malformed_next=1)
    response = api(http, emu, BY_MACHINE + "?pageSize=20")
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.content)
    with pytest.raises(ValueError):
        response.json()
    assert api(http, emu, BY_MACHINE + "?pageSize=20").json()["value"]


# -- the files route and the file host -----------------------------------------------------------------


def test_files_export_lists_signed_links_on_the_file_host(emu, http):
    body = api(http, emu, FILES + "?sasValidHours=2").json()
    assert set(body) == {"@odata.context", "exportFiles", "generatedTime"}
    assert body["@odata.context"].endswith("#microsoft.windowsDefenderATP.api.ExportFilesResponse")
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", body["generatedTime"])
    files_host = urllib.parse.urlsplit(emu.files_url)
    assert files_host.netloc != urllib.parse.urlsplit(emu.url).netloc
    assert urllib.parse.urlsplit(emu.url).hostname != files_host.hostname   # a second host name
    assert len(body["exportFiles"]) == len(emu.export_summary()["files"]) == 3
    for url in body["exportFiles"]:
        assert url.startswith(emu.files_url + "/")
        parts = urllib.parse.urlsplit(url)
        assert parts.path.endswith(".json.gz")
        query = dict(urllib.parse.parse_qsl(parts.query))
        assert {"sv", "st", "se", "sr", "sp", "sig"} <= set(query) and query["sp"] == "r"
        start, expiry = (datetime.datetime.strptime(query[k], "%Y-%m-%dT%H:%M:%SZ") for k in ("st", "se"))
        assert expiry - start == datetime.timedelta(hours=2)
    for bad in ("0", "7", "x"):
        assert_api_error(api(http, emu, f"{FILES}?sasValidHours={bad}"), 400, "InvalidInput")
    assert emu.stats()["export_lists_issued"] == 1


def test_files_are_gzip_json_lines_in_pascal_case(emu, http):
    everything = export_records(http, emu)
    lines = [record for url in export_list(http, emu) for record in download(http, url)]
    assert len(lines) == len(everything)
    assert [r["Id"] for r in lines] == [r["id"] for r in everything]
    for line, record in zip(lines, everything):
        assert all(PASCAL.match(key) for key in line), line
        assert list(line) == sorted(line)           # alphabetical, as Spark writes them
        assert line["DeviceId"] == record["deviceId"] and line["SoftwareName"] == record["softwareName"]
        assert kb_of(line, "RecommendedSecurityUpdateId") == kb_of(record)
        assert line.get("CveId") == record["cveId"]
        assert None not in line.values()            # keys without a value are left out
    stats = emu.stats()
    assert stats["file_downloads"] == 3 and stats["file_bytes_served"] == emu.export_summary()["file_bytes"]


def test_file_headers_and_range_requests(emu, http):
    url = export_list(http, emu)[0]
    response = http.get(url)
    whole = response.content
    # Azure's headers, once each (not http.server's as well).
    assert response.headers["Server"] == "Windows-Azure-Blob/1.0 Microsoft-HTTPAPI/2.0"
    assert re.match(r"^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$", response.headers["Date"])
    assert response.headers["x-ms-blob-type"] == "BlockBlob" and int(response.headers["Content-Length"]) == len(whole)
    part = http.get(url, headers={"Range": "bytes=10-"})
    assert part.status_code == 206 and part.content == whole[10:]
    assert part.headers["Content-Range"] == f"bytes 10-{len(whole) - 1}/{len(whole)}"
    assert_blob_error(http.get(url, headers={"Range": f"bytes={len(whole)}-"}), 416, "InvalidRange")


def test_sas_signature_is_checked(emu, http):
    url = export_list(http, emu)[0]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    sig = query["sig"]
    forged = sig[:-5] + ("A" if sig[-5] != "A" else "B") + sig[-4:]
    assert_blob_error(http.get(with_query(url, sig=forged)), 403, "AuthenticationFailed")
    longer = (datetime.datetime.strptime(query["se"], "%Y-%m-%dT%H:%M:%SZ")
              + datetime.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert_blob_error(http.get(with_query(url, se=longer)), 403, "AuthenticationFailed")  # expiry is signed
    other = urllib.parse.urlsplit(export_list(http, emu)[1]).path
    assert_blob_error(http.get(urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path=other))),
                      403, "AuthenticationFailed")                                          # so is the blob
    assert_blob_error(http.get(url.split("?")[0]), 404, "ResourceNotFound")
    assert http.get(url).status_code == 200
    stats = emu.stats()
    assert stats["file_requests"] == 5 and stats["file_downloads"] == 1 and stats["file_requests_refused"] == 4


def test_sas_expires_on_the_emulator_clock(emu, http, clock):
    url = export_list(http, emu, hours=1)[0]
    clock.advance(3500)
    assert http.get(url).status_code == 200
    clock.advance(200)                                   # 3,700 s after the list: past its expiry
    assert_blob_error(http.get(url), 403, "AuthenticationFailed")
    fresh = export_list(http, emu, hours=1)[0]
    assert fresh != url and http.get(fresh).status_code == 200


def test_sas_expire_after_downloads(emu, http):
    emu.configure(sas_expire_after_downloads=2)
    first, second, third = export_list(http, emu)
    assert http.get(first).status_code == 200
    assert http.get(second).status_code == 200
    assert_blob_error(http.get(third), 403, "AuthenticationFailed")   # the whole list expired
    assert_blob_error(http.get(first), 403, "AuthenticationFailed")
    fresh = export_list(http, emu)
    assert http.get(fresh[2]).status_code == 200
    assert emu.stats()["file_downloads"] == 3


def test_file_host_refuses_a_bearer_token(emu, http):
    url = export_list(http, emu)[0]
    response = http.get(url, headers=bearer(emu))
    assert_blob_error(response, 403, "AuthenticationFailed")
    assert "Bearer" in response.text
    stats = emu.stats()
    assert stats["file_requests_with_bearer"] == 1 and stats["file_downloads"] == 0
    assert http.get(url).status_code == 200
    assert emu.stats()["file_requests_with_bearer"] == 1


def test_file_truncate_next(emu, http):
    emu.configure(file_truncate_next=1)
    url = export_list(http, emu)[0]
    with pytest.raises(requests.exceptions.RequestException):
        http.get(url)
    assert download(http, url)                         # the next download is whole
    stats = emu.stats()
    assert stats["faults_injected"]["file_truncate"] == 1 and emu.faults()["file_truncate_next"] == 0


def test_fail_next_on_the_file_host(emu, http):
    emu.configure(fail_next=[{"path_regex": r"part-00001-", "status": 503, "target": "files"}])
    urls = export_list(http, emu)                     # an API request: not the file host's entry
    assert http.get(urls[0]).status_code == 200
    assert_blob_error(http.get(urls[1]), 503, "ServerBusy")
    assert http.get(urls[1]).status_code == 200
    stats = emu.stats()
    assert stats["faults_injected"]["fail_next"] == 1 and stats["file_status_counts"] == {"200": 2, "503": 1}


def test_export_empty_files(emu, http):
    emu.configure(export_empty_files=2)
    urls = export_list(http, emu)
    assert len(urls) == 5 and len(set(urls)) == 5
    records = [record for url in urls[:3] for record in download(http, url)]
    assert len(records) == emu.export_summary()["records"]
    for url in urls[3:]:
        response = http.get(url)
        assert response.status_code == 200 and response.content == b""
    emu.configure(export_empty_files=0)
    assert len(export_list(http, emu)) == 3


# -- the delta ---------------------------------------------------------------------------------------


def test_delta_records_and_since_time(emu, http):
    records, dummy = follow(http, emu, f"{CHANGES}?sinceTime={OLDEST}&pageSize=40")
    assert len(records) == emu.export_summary()["delta_records"] > 40
    assert {r["status"] for r in records} == {"New", "Fixed", "Updated"}
    for record in records:
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", record["eventTimestamp"])
        assert record["eventTimestamp"] >= OLDEST and isinstance(record["rbacGroupId"], int)
        assert all(CAMEL.match(key) for key in record)
    assert [r["eventTimestamp"] for r in records] == sorted(r["eventTimestamp"] for r in records)
    later = follow(http, emu, f"{CHANGES}?sinceTime=2024-02-15T09:30:00Z")[0]
    assert later == [r for r in records if r["eventTimestamp"] >= "2024-02-15T06:00:00"]   # its six-hour bucket
    assert 0 < len(later) < len(records)
    assert_api_error(api(http, emu, CHANGES), 400, "MissingRequiredParameter")
    too_old = OLDEST_SINCE - datetime.timedelta(seconds=1)
    assert_api_error(api(http, emu, f"{CHANGES}?sinceTime={too_old:%Y-%m-%dT%H:%M:%SZ}"), 400, "InvalidInput")
    assert_api_error(api(http, emu, f"{CHANGES}?sinceTime=yesterday"), 400, "InvalidInput")


def test_delta_has_rbac_move_duplicates(emu, http):
    records = follow(http, emu, f"{CHANGES}?sinceTime={OLDEST}")[0]
    moved = {mid for mid, m in emu.data["machines"].items() if m["computerDnsName"] in MOVED_HOSTS}
    pairs = collections.defaultdict(list)
    for record in records:
        pairs[(record["id"], record["eventTimestamp"])].append(record)
    moves = [group for group in pairs.values()
             if {r["status"] for r in group} >= {"Fixed", "New"}
             and {r["rbacGroupName"] for r in group} >= {"Unassigned"} and len({r["rbacGroupName"] for r in group}) > 1]
    assert moved and moved <= {group[0]["deviceId"] for group in moves}
    for group in moves:
        fixed = [r for r in group if r["status"] == "Fixed" and r["rbacGroupName"] == "Unassigned"]
        new = [r for r in group if r["status"] == "New" and r["rbacGroupName"] != "Unassigned"]
        assert fixed and new and new[0]["rbacGroupName"] == emu.data["machines"][group[0]["deviceId"]]["rbacGroupName"]
    orders = {tuple(r["status"] for r in group) for group in moves}
    assert ("Fixed", "New") in orders and ("New", "Fixed") in orders   # either order: a client must not rely on it


@pytest.mark.parametrize("since", [OLDEST, "2024-02-13T20:15:00Z", "2024-02-19T23:59:59.5+00:00"])
def test_delta_truth_agrees_with_the_records(emu, http, since):
    current = export_records(http, emu)
    changes = follow(http, emu, f"{CHANGES}?sinceTime={urllib.parse.quote(since)}")[0]
    truth = emu.delta_truth(since)
    assert truth and {k: {kind: sorted(v) for kind, v in kinds.items()} for k, kinds in truth.items()} == \
        derive_delta(current, changes)
    if since == OLDEST:
        for kind in ("new", "fixed", "transient"):
            assert any(kinds[kind] for kinds in truth.values()), kind
    admin = http.post(emu.url + "/_emulator/delta-truth", json={"since": since}).json()
    assert admin == truth


# -- the data behind it ----------------------------------------------------------------------------------


def test_messy_findings_are_present(emu, http):
    records = export_records(http, emu)
    ids = [r.get("recommendedSecurityUpdateId", "<absent>") for r in records]
    assert any(isinstance(v, str) and v.isdigit() for v in ids)                   # "5034123"
    assert any(isinstance(v, int) and not isinstance(v, bool) for v in ids)        # 5034123
    assert any(isinstance(v, str) and v.startswith("KB") for v in ids)            # "KB5034123"
    assert None in ids and "<absent>" in ids                                      # null, and no key at all
    assert any(isinstance(v, str) and v.startswith("RHSA-") for v in ids)
    assert any(isinstance(v, str) and v.startswith("USN-") for v in ids)
    updates = {r.get("recommendedSecurityUpdate") for r in records}
    assert "ADV 200002" in updates
    assert any(r.get("recommendedSecurityUpdate") and r.get("recommendedSecurityUpdateId") is None
               for r in records)                                                  # an advisory, no KB
    assert any(r["cveId"] is None for r in records)                               # software without a CVE
    assert any("diskPaths" not in r for r in records) and any(r.get("diskPaths") == [] for r in records)
    linux = {r["deviceId"] for r in records if r["osPlatform"] == "Linux"}
    assert {mid for mid, dummy, dummy2, dummy3 in LINUX_MACHINES} <= linux
    assert not any(kb_of(r) for r in records if r["deviceId"] in linux)
    for mid in linux:
        assert api(http, emu, f"/api/machines/{mid}/getmissingkbs").json()["value"] == []


def test_ground_truth_matches_getmissingkbs(emu, http):
    records = export_records(http, emu)
    counts = kb_counts(records)
    truth = emu.export_truth()
    assert counts == truth
    for mid, machine in emu.data["machines"].items():
        missing = {kb["id"] for kb in machine["missing_kbs"]}
        assert set(counts.get(mid, {})) == missing, machine["computerDnsName"]
    assert any(not m["missing_kbs"] for m in emu.data["machines"].values())        # a patched device too
    assert emu.data["export"]["kb_findings"] == truth
    assert sum(sum(per.values()) for per in truth.values()) == emu.export_summary()["kb_findings_total"]
    assert http.post(emu.url + "/_emulator/export-truth", json={}).json() == truth
    some = sorted(truth)[:2]
    assert http.post(emu.url + "/_emulator/export-truth", json={"device_ids": some}).json() == {
        mid: truth[mid] for mid in some}
    summary = http.get(emu.url + "/_emulator/export").json()
    assert summary["records"] == len(records) and summary == emu.export_summary()


# -- permissions and rate limits ---------------------------------------------------------------------


@pytest.mark.parametrize("path", [BY_MACHINE, FILES, f"{CHANGES}?sinceTime={OLDEST}"])
def test_export_needs_vulnerability_read_all(emu, http, path):
    for client in ("softwareonly", "noperm"):
        assert_api_error(api(http, emu, path, client), 403, "Forbidden",
                         "The application does not have any of the required application permissions "
                         "(Vulnerability.Read.All) to access the resource.")
    assert api(http, emu, path).status_code == 200
    assert emu.stats()["status_counts"] == {"403": 2, "200": 1}


def test_export_rate_limits_per_route(emu, http, clock):
    emu.configure(export_json_rate_limit_per_minute=2, export_files_rate_limit_per_minute=1)
    headers = bearer(emu)
    statuses = [http.get(emu.url + BY_MACHINE + "?$top=1", headers=headers).status_code for dummy in range(2)]
    clock.advance(20)
    limited = http.get(emu.url + BY_MACHINE + "?$top=1", headers=headers)
    assert statuses == [200, 200]
    assert_api_error(limited, 429, "TooManyRequests")
    assert limited.headers["Retry-After"] == "40"
    # The other JSON route, the files route and the rest of the API have windows of their own.
    assert http.get(emu.url + f"{CHANGES}?sinceTime={OLDEST}&$top=1", headers=headers).status_code == 200
    assert http.get(emu.url + FILES, headers=headers).status_code == 200
    assert http.get(emu.url + "/api/machines", headers=headers).status_code == 200
    files_limited = http.get(emu.url + FILES, headers=headers)
    assert_api_error(files_limited, 429, "TooManyRequests")
    assert 1 <= int(files_limited.headers["Retry-After"]) <= 60
    clock.advance(41)
    assert http.get(emu.url + BY_MACHINE + "?$top=1", headers=headers).status_code == 200
    stats = emu.stats()
    assert stats["faults_injected"]["export_rate_limit"] == 2
    assert stats["export_max_in_any_60s"]["software_vulnerabilities_by_machine"] == 3


def test_export_rate_limit_per_hour(emu, http, clock):
    emu.configure(export_files_rate_limit_per_hour=2)
    headers = bearer(emu)
    for dummy in range(2):
        assert http.get(emu.url + FILES, headers=headers).status_code == 200
        clock.advance(120)
    limited = http.get(emu.url + FILES, headers=headers)
    assert_api_error(limited, 429, "TooManyRequests")
    # Rejected calls count too: a slot frees when the second call (t=120) leaves the hour, at t=3,720.
    assert limited.headers["Retry-After"] == str(3600 + 120 - 240)
    clock.advance(3600 + 120 - 240)
    assert http.get(emu.url + FILES, headers=headers).status_code == 200
    emu.configure(export_json_rate_limit_per_hour=1)
    assert http.get(emu.url + BY_MACHINE + "?$top=1", headers=headers).status_code == 200
    clock.advance(300)
    assert http.get(emu.url + BY_MACHINE + "?$top=1", headers=headers).status_code == 429


# -- a generated fleet -------------------------------------------------------------------------------


def test_fleet_in_machines_and_export(tmp_path):
    """One emulator with 2,000 generated devices and 26 records per device (more than one default page)."""
    clock = FakeClock()
    with Emulator(str(tmp_path), seed=3, fleet=2000, findings_per_device=26, export_parts=4, clock=clock) as emu, \
            VerifyingSession(emu.ca_path) as http:
        headers = bearer(emu)
        machines, pages = follow(http, emu, "/api/machines", headers)
        assert pages == 1 and len(machines) == 2000 + 22
        ids = [m["id"] for m in machines]
        assert len(set(ids)) == len(ids) and all(re.match(r"^[0-9a-f]{40}$", mid) for mid in ids)
        assert sum(1 for m in machines if "Fleet" in m["machineTags"]) == 2000
        assert {m["osPlatform"] for m in machines} >= {"Windows10", "Windows11", "WindowsServer2022", "Linux"}
        summary = emu.prepare_export()
        assert summary["devices"] == len(machines) and summary["records"] >= 26 * len(machines)
        assert summary["records"] > export_module.DEFAULT_PAGE_SIZE
        first = http.get(emu.url + BY_MACHINE, headers=headers).json()      # no pageSize: 50,000 a page
        assert len(first["value"]) == export_module.DEFAULT_PAGE_SIZE
        rest = http.get(first["@odata.nextLink"], headers=headers).json()
        assert "@odata.nextLink" not in rest
        records = first["value"] + rest["value"]
        assert len(records) == summary["records"] and {r["deviceId"] for r in records} == set(ids)
        per_device = collections.Counter(r["deviceId"] for r in records)
        assert min(per_device.values()) >= 26
        truth = emu.export_truth()
        assert kb_counts(records) == truth
        for mid in ids[-2000::97]:                                           # fleet devices, against the API
            served = http.get(f"{emu.url}/api/machines/{mid}/getmissingkbs", headers=headers).json()["value"]
            assert {kb["id"] for kb in served} == set(truth.get(mid, {}))
        urls = http.get(emu.url + FILES, headers=headers).json()["exportFiles"]
        assert len(urls) == 4
        lines = [line for url in urls for line in download(http, url)]
        assert kb_counts(lines, "DeviceId", "RecommendedSecurityUpdateId") == truth


def test_fleet_machine_list_pages_at_10000(tmp_path):
    with Emulator(str(tmp_path), seed=3, fleet=10000) as emu, VerifyingSession(emu.ca_path) as http:
        headers = bearer(emu)
        first = http.get(emu.url + "/api/machines", headers=headers).json()
        assert len(first["value"]) == 10000 and "$skiptoken=" in first["@odata.nextLink"]
        rest = http.get(first["@odata.nextLink"], headers=headers).json()
        assert len(rest["value"]) == 22 and "@odata.nextLink" not in rest
        assert len({m["id"] for m in first["value"] + rest["value"]}) == 10022
        assert_api_error(http.get(emu.url + "/api/machines?$top=10001", headers=headers), 400, "ODataError")


def test_fleet_machine_pages_draw_only_the_devices_they_serve(tmp_path, monkeypatch):
    """A page of /api/machines draws its own fleet devices and no other (a page of 10,000 of 100,000
    devices drew all 100,000), and a filtered listing draws every device once to filter, for all its
    pages and for a listing with the same filter after it."""
    drawn = collections.Counter()
    entity = fleet_module.Fleet.entity
    monkeypatch.setattr(fleet_module.Fleet, "entity", lambda self, index: drawn.update([index]) or entity(self, index))
    with Emulator(str(tmp_path), seed=3, fleet=2500) as emu, VerifyingSession(emu.ca_path) as http:
        emu.configure(page_size=1000)
        headers = bearer(emu)
        machines, pages = follow(http, emu, "/api/machines", headers)
        assert pages == 3 and len(machines) == 2522 and len({m["id"] for m in machines}) == 2522
        assert set(drawn.values()) == {1} and len(drawn) == 2500          # each device once, for its page
        drawn.clear()
        page = http.get(emu.url + "/api/machines?$skip=2400&$top=50", headers=headers).json()["value"]
        assert page == machines[2400:2450] and sum(drawn.values()) == 50
        query = "/api/machines?$filter=" + urllib.parse.quote("osPlatform eq 'Windows11' or osPlatform eq 'Linux'")
        wanted = [m for m in machines if m["osPlatform"] in ("Windows11", "Linux")]
        fleet_wanted = sum(1 for m in wanted if "Fleet" in m["machineTags"])
        for listing in range(2):
            drawn.clear()
            filtered, pages = follow(http, emu, query, headers)
            assert filtered == wanted and pages == -(-len(wanted) // 1000) > 1
            # filtering draws every device once, the first time; then each page its own devices
            assert sum(drawn.values()) == (2500 if listing == 0 else 0) + fleet_wanted


def test_export_is_generated_once_per_state_dir(tmp_path):
    """A second emulator with the same parameters reuses the files (a benchmark after another)."""
    first = Emulator(str(tmp_path), seed=11, fleet=20, findings_per_device=4, export_parts=2)
    summary = first.prepare_export()
    meta = os.path.join(summary["directory"], "meta.json")
    stamp = os.stat(meta).st_mtime_ns
    again = Emulator(str(tmp_path), seed=11, fleet=20, findings_per_device=4, export_parts=2).prepare_export()
    assert again == summary and os.stat(meta).st_mtime_ns == stamp
    assert summary["devices"] == 20 + 22 and len(summary["files"]) == 2 and summary["records"] >= 4 * 42
    other = Emulator(str(tmp_path), seed=11, fleet=20, findings_per_device=5, export_parts=2).prepare_export()
    assert other["directory"] != summary["directory"] and other["records"] > summary["records"]
    with pytest.raises(ValueError):
        Emulator(str(tmp_path), findings_per_device=0)
    with pytest.raises(ValueError):
        Emulator(str(tmp_path), export_parts=0)
    with pytest.raises(ValueError):
        Emulator(str(tmp_path), fleet=-1)


def test_cli_export_options(tmp_path):
    state = str(tmp_path / "cli-state")
    env = dict(os.environ, PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))
    command = [sys.executable, "-m", "mde_emulator", "--state-dir", state, "--fleet", "30", "--findings-per-device",
               "3", "--export-parts", "2", "--files-host", "127.0.0.1", "--host", "localhost", "--prepare-export",
               "--sas-expire-after-downloads", "1"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True) as process:
        try:
            info = json.loads(process.stdout.readline())
            assert info["fleet"] == 30 and info["files_url"].startswith("https://127.0.0.1:")
            assert info["url"].startswith("https://localhost:")
            assert os.path.exists(os.path.join(info["export_dir"], "meta.json"))   # before the ready line
            with VerifyingSession(info["ca_path"]) as session:
                summary = session.get(info["url"] + "/_emulator/export").json()
                assert summary["devices"] == 52 and len(summary["files"]) == 2
                assert session.get(info["url"] + "/_emulator/config").json()["sas_expire_after_downloads"] == 1
        finally:
            process.send_signal(signal.SIGTERM)
            rest, stderr = process.communicate(timeout=10)
        assert process.returncode == 0, stderr
        assert rest == ""
