"""Tests of the emulator's device list, GET /api/machines, as an inventory reads it.

They pin what the ``defender.tvm.devices`` inventory plugin is tested against: ``$filter`` on every
field get-machines.md lists (typed: strings, ``rbacGroupId`` a number, ``lastSeen`` a date and
time, ``machineTags`` a collection filtered with ``any()``), the 404 Defender answers when no device
matches, paging, and the fixed devices an inventory must cope with (``INVENTORY_MACHINES``: tags
that look like templates, two devices with one name, a device without a name), present for every
seed and consistent with the software, getmissingkbs and the vulnerability export.
"""
# pylint: disable=redefined-outer-name,missing-function-docstring

import collections
import gzip
import json
import urllib.parse

import pytest

from emulator_helpers import api, assert_api_error, bearer
from mde_emulator import data as data_module
from mde_emulator.data import DUPLICATE_NAME, INVENTORY_MACHINES, TEMPLATE_TAGS, Dataset
from mde_emulator.defender import Defender, Request
from mde_emulator.odata import ticks

TAGS_DEVICE, DUP_NEW, DUP_OLD, NAMELESS = (spec["id"] for spec in INVENTORY_MACHINES)
INVENTORY_IDS = [spec["id"] for spec in INVENTORY_MACHINES]
# What every device of the list carries (get-machines.md's Machine entity; "version" is the OS version).
REQUIRED = ("id", "computerDnsName", "lastSeen", "osPlatform", "version", "lastIpAddress", "healthStatus",
            "riskScore", "exposureLevel", "machineTags", "rbacGroupName", "rbacGroupId")


def machines(http, emu, query=None):
    """The ids of ``GET /api/machines?$filter=<query>`` (``query`` as raw query text if it starts with
    ``$``); [] for Defender's 404 when no device matches."""
    path = "/api/machines"
    if query is not None:
        path += "?" + (query if query.startswith("$") else "$filter=" + urllib.parse.quote(query))
    response = api(http, emu, path)
    if response.status_code == 404:
        assert_api_error(response, 404, "ResourceNotFound", "No machines were found")
        return []
    assert response.status_code == 200, response.text
    return [m["id"] for m in response.json()["value"]]


def expected(emu, predicate):
    """The ids of the dataset's devices for which ``predicate(machine)``, in list order."""
    return [mid for mid, machine in emu.data["machines"].items() if predicate(machine)]


def follow(http, url, headers):
    items, pages = [], 0
    while url:
        response = http.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["value"])
        pages += 1
        url = body.get("@odata.nextLink")
    return items, pages


def kb_of(value):
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        digits = value[2:] if value[:2].upper() == "KB" else value
        return digits if digits.isdigit() else None
    return None


# -- $filter ------------------------------------------------------------------------------------------


def test_every_listed_field_filters(emu, http):
    """eq on each string field, against the dataset; comparisons ignore case."""
    data = emu.data["machines"]
    tags = data[TAGS_DEVICE]
    for field in ("computerDnsName", "id", "version", "deviceValue", "aadDeviceId", "exposureLevel",
                  "onboardingStatus", "lastIpAddress", "healthStatus", "osPlatform", "riskScore"):
        value = tags[field]
        want = expected(emu, lambda m, f=field, v=value: isinstance(m[f], str) and m[f].lower() == v.lower())
        assert want and TAGS_DEVICE in want, field
        assert machines(http, emu, f"{field} eq '{value.upper()}'") == want, field
        others = machines(http, emu, f"{field} ne '{value}'")
        assert others == [mid for mid in data if mid not in want], field
    assert machines(http, emu, f"id eq '{TAGS_DEVICE.upper()}'") == [TAGS_DEVICE]
    assert machines(http, emu, "rbacGroupId eq 102") == expected(emu, lambda m: m["rbacGroupId"] == 102)
    assert machines(http, emu, "rbacGroupId ge 201 and rbacGroupId lt 203") == expected(
        emu, lambda m: 201 <= m["rbacGroupId"] < 203)
    assert machines(http, emu, "rbacGroupId gt 200 or osPlatform eq 'Linux'") == expected(
        emu, lambda m: m["rbacGroupId"] > 200 or m["osPlatform"] == "Linux")


def test_microsofts_examples(emu, http):
    """The filters of get-machines.md, written as Microsoft writes them ('+' for spaces)."""
    assert machines(http, emu, "$filter=startswith(computerDnsName,'ws-0')") == expected(
        emu, lambda m: (m["computerDnsName"] or "").startswith("ws-0"))
    high = machines(http, emu, "$filter=riskScore+eq+'High'")
    assert high == expected(emu, lambda m: m["riskScore"] == "High") and TAGS_DEVICE in high
    unhealthy = machines(http, emu, "$filter=healthStatus+ne+'Active'&$top=100")
    assert unhealthy == expected(emu, lambda m: m["healthStatus"] != "Active") and {DUP_OLD, NAMELESS} <= set(unhealthy)
    assert machines(http, emu, "$filter=lastSeen gt 2018-08-01Z") == list(emu.data["machines"])


def test_string_functions(emu, http):
    assert machines(http, emu, "endswith(computerDnsName,'.fabrikam.local')") == expected(
        emu, lambda m: (m["computerDnsName"] or "").endswith(".fabrikam.local"))
    assert machines(http, emu, "contains(computerDnsName,'DUP')") == [DUP_NEW, DUP_OLD]
    assert machines(http, emu, "startswith(lastIpAddress,'10.10.5.')") == INVENTORY_IDS
    # a device without a name matches no function, and null is a literal
    assert machines(http, emu, "contains(computerDnsName,'')") == [mid for mid in emu.data["machines"] if mid != NAMELESS]
    assert machines(http, emu, "computerDnsName eq null") == [NAMELESS]
    assert NAMELESS in machines(http, emu, "computerDnsName ne 'ws-0001.contoso.local'")
    assert NAMELESS not in machines(http, emu, "computerDnsName ne null")


def test_last_seen_comparisons(emu, http):
    """gt/ge/lt/le (and eq/ne) against a date or a date and time, unquoted; to the 100 ns tick."""
    data = emu.data["machines"]
    old = data[DUP_OLD]["lastSeen"]          # 2024-01-29T...: three weeks before the snapshot
    assert machines(http, emu, "lastSeen lt 2024-02-01Z") == [DUP_OLD]
    assert machines(http, emu, "lastSeen lt 2024-02-01") == [DUP_OLD]   # a date without a zone is UTC
    assert DUP_OLD not in machines(http, emu, "lastSeen ge 2024-02-01Z")
    for moment in ("2024-02-19T12:00:00Z", "2024-02-20T00:00:00Z", "2024-02-20T03:30:00.5Z",
                   "2024-02-20T05:00:00+01:00", "2024-02-19T22:00:00-04:00"):
        at = ticks(moment)
        for operator, test in (("gt", lambda t: t > at), ("ge", lambda t: t >= at), ("lt", lambda t: t < at),
                               ("le", lambda t: t <= at)):
            want = expected(emu, lambda m, test=test: test(ticks(m["lastSeen"])))
            assert machines(http, emu, f"lastSeen {operator} {moment}") == want, (operator, moment)
    exact = data[DUP_NEW]["lastSeen"]        # seven fractional digits, as Defender writes them
    assert machines(http, emu, f"lastSeen eq {exact}") == expected(emu, lambda m: m["lastSeen"] == exact)
    assert machines(http, emu, f"lastSeen ge {exact} and lastSeen le {exact}") == expected(
        emu, lambda m: m["lastSeen"] == exact)
    assert DUP_NEW not in machines(http, emu, f"lastSeen ne {exact}")
    assert ticks(old) < ticks("2024-02-01Z") < ticks(exact)
    recent = machines(http, emu, "lastSeen ge 2024-02-19T06:00:00Z and healthStatus eq 'Active'")
    assert recent == expected(emu, lambda m: m["lastSeen"] >= "2024-02-19T06:00:00" and m["healthStatus"] == "Active")


def test_machine_tags_any(emu, http):
    prod = expected(emu, lambda m: "prod" in [t.lower() for t in m["machineTags"]])
    assert prod == [TAGS_DEVICE, DUP_NEW, DUP_OLD]
    for text in ("machineTags/any(tag: tag eq 'Prod')", "machineTags/any(t:t eq 'PROD')",
                 "machineTags/any( x : x eq 'prod' )", "MachineTags/any(Tag_1: Tag_1 eq 'Prod')"):
        assert machines(http, emu, text) == prod, text
    assert machines(http, emu, "machineTags/any(tag: tag eq 'Prod' or tag eq 'Finance')") == prod
    assert machines(http, emu, "machineTags/any(tag: tag eq 'Finance')") == [TAGS_DEVICE]
    assert machines(http, emu, "machineTags/any(tag: tag eq 'Prod') and healthStatus eq 'Active'") == [
        TAGS_DEVICE, DUP_NEW]
    assert machines(http, emu, "machineTags/any(tag: startswith(tag,'{{'))") == [TAGS_DEVICE]
    assert machines(http, emu, "machineTags/any(tag: tag eq '{{ 7 * 6 }}')") == [TAGS_DEVICE]
    assert machines(http, emu, "machineTags/any(tag: tag ne 'Server')") == expected(
        emu, lambda m: any(t != "Server" for t in m["machineTags"]))
    assert machines(http, emu, "machineTags/any()") == expected(emu, lambda m: bool(m["machineTags"]))
    servers = machines(http, emu, "machineTags/any(tag: tag eq 'Server') or osPlatform eq 'Linux'")
    assert servers == expected(emu, lambda m: "Server" in m["machineTags"] or m["osPlatform"] == "Linux")


@pytest.mark.parametrize("text", [
    "rbacGroupId eq '101'",                   # a number field, a string literal
    "lastSeen gt '2024-02-01'",               # a date field, a string literal
    "healthStatus eq 101",                    # a string field, a number
    "osPlatform gt 'Linux'",                  # ordering on a string
    "lastSeen gt 2024-13-01Z",                # not a date
    "lastSeen gt null",
    "startswith(lastSeen,'2024')",            # a function on a non-string
    "machineTags eq 'Prod'",                  # a collection without a lambda
    "osPlatform/any(x: x eq 'Linux')",        # a lambda on a single value
    "machineTags/all(tag: tag eq 'Prod')",    # only any() is emulated
    "machineTags/any(tag: tag eq 'Prod'",
    "machineTags/any(tag tag eq 'Prod')",
    "machineTags/any(tag: other eq 'Prod')",  # an unknown name in the lambda
    "isAadJoined eq 'true'",                  # not a filterable field
    "nope eq 'x'",
    "computerDnsName eq 'a' and",
    "computerDnsName eq",
    "(osPlatform eq 'Linux'",
])
def test_bad_filters_are_400(emu, http, text):
    response = api(http, emu, "/api/machines?$filter=" + urllib.parse.quote(text))
    assert_api_error(response, 400, "ODataError")
    assert response.json()["error"]["message"].startswith("Invalid filter clause: ")


# -- 404 when nothing matches ---------------------------------------------------------------------------


def test_no_match_is_404(emu, http):
    """get-machines.md: "If there are no recent machines, you see 404 Not Found"."""
    for text in ("computerDnsName eq 'ghost.contoso.local'", "startswith(computerDnsName,'nohost.')",
                 "lastSeen gt 2030-01-01Z", "rbacGroupId eq 999", "machineTags/any(tag: tag eq 'NoSuchTag')"):
        response = api(http, emu, "/api/machines?$filter=" + urllib.parse.quote(text))
        assert_api_error(response, 404, "ResourceNotFound", "No machines were found")
    stats = emu.stats()
    assert stats["status_counts"] == {"404": 5} and stats["api_by_route"]["machine_list"] == 5
    # nothing matched before $top/$skip: 404 with them too; a $skip past a match is an empty page
    assert_api_error(api(http, emu, "/api/machines?$filter=rbacGroupId eq 999&$top=10&$skip=0"), 404,
                     "ResourceNotFound")
    past = api(http, emu, "/api/machines?$filter=" + urllib.parse.quote("osPlatform eq 'Linux'") + "&$skip=50")
    assert past.status_code == 200 and past.json()["value"] == []
    # permissions, and a bad filter, come first
    assert_api_error(api(http, emu, "/api/machines?$filter=rbacGroupId eq 999", client="softwareonly"), 403,
                     "Forbidden")
    assert_api_error(api(http, emu, "/api/machines?$filter=rbacGroupId eq '999'"), 400, "ODataError")
    # the 404 is an ordinary answer for the faults too: fail_next still wins
    emu.configure(fail_next=[{"path_regex": "machines", "status": 503}])
    assert api(http, emu, "/api/machines?$filter=rbacGroupId eq 999").status_code == 503
    assert api(http, emu, "/api/machines?$filter=rbacGroupId eq 999").status_code == 404


def test_dataset_without_devices_is_404():
    """A listing of no device at all (no filter) is the same 404."""
    dataset = Dataset(0)

    class Traffic:  # pylint: disable=too-few-public-methods
        @staticmethod
        def get(key):
            return {"page_size": 0}.get(key)

    dataset.machines._own.clear()  # pylint: disable=protected-access
    defender = Defender(dataset, None, Traffic())
    status, body, dummy = defender.serve("GET", "machine_list", Request([], "", "/api/machines", "https://x"),
                                         ({"roles": ["Machine.Read.All"]}, None))
    assert status == 404 and body["error"]["code"] == "ResourceNotFound"


# -- paging ---------------------------------------------------------------------------------------------


def test_filtered_list_pages(emu, http):
    headers = bearer(emu)
    query = "$filter=" + urllib.parse.quote("machineTags/any(tag: tag eq 'Prod') or osPlatform eq 'Windows11'")
    full = [m["id"] for m in http.get(f"{emu.url}/api/machines?{query}", headers=headers).json()["value"]]
    assert len(full) > 3
    emu.configure(page_size=2)
    first = http.get(f"{emu.url}/api/machines?{query}", headers=headers).json()
    assert len(first["value"]) == 2 and "$filter=" in first["@odata.nextLink"]
    items, pages = follow(http, f"{emu.url}/api/machines?{query}", headers)
    assert [m["id"] for m in items] == full and pages == -(-len(full) // 2)
    # $top and $skip on a filtered list, without page_size
    emu.configure(page_size=0)
    assert machines(http, emu, f"{query}&$top=2&$skip=1") == full[1:3]
    assert machines(http, emu, f"{query}&$top=10000") == full
    assert_api_error(api(http, emu, f"/api/machines?{query}&$top=10001"), 400, "ODataError")
    assert "10000" in api(http, emu, "/api/machines?$top=10001").json()["error"]["message"]


# -- the fixed devices --------------------------------------------------------------------------------


def test_every_device_has_the_inventory_fields(emu, http):
    listed = api(http, emu, "/api/machines").json()["value"]
    assert [m["id"] for m in listed] == list(emu.data["machines"])
    for machine in listed:
        assert set(REQUIRED) <= set(machine), machine["id"]
        assert isinstance(machine["machineTags"], list) and isinstance(machine["rbacGroupId"], int)
        for field in ("lastSeen", "osPlatform", "version", "lastIpAddress", "healthStatus", "riskScore",
                      "exposureLevel", "rbacGroupName"):
            assert isinstance(machine[field], str) and machine[field], (machine["id"], field)
        assert ticks(machine["lastSeen"]) is not None
    for field, at_least in (("osPlatform", 2), ("exposureLevel", 3), ("riskScore", 3), ("healthStatus", 3)):
        assert len({m[field] for m in listed}) >= at_least, field
    tags = collections.Counter(t for m in listed for t in m["machineTags"])
    assert {"Prod", "Finance", "Server", "Linux"} <= set(tags) and set(TEMPLATE_TAGS) <= set(tags)
    assert any(not m["machineTags"] for m in listed)


@pytest.mark.parametrize("seed", [0, 7, 1234])
def test_inventory_devices_are_there_for_every_seed(seed):
    data = Dataset(seed, extra_software=2, extra_machines=2).to_dict()
    machines_ = data["machines"]
    assert list(machines_)[-len(INVENTORY_IDS):] == INVENTORY_IDS   # after every other device
    tags = machines_[TAGS_DEVICE]
    assert tags["machineTags"] == ["Prod", "Finance"] + TEMPLATE_TAGS
    assert "{{ lookup('ansible.builtin.pipe', 'touch /tmp/defender-tvm-pwned') }}" in tags["machineTags"]
    assert "{{ 7 * 6 }}" in tags["machineTags"]
    new, old = machines_[DUP_NEW], machines_[DUP_OLD]
    assert new["computerDnsName"] == old["computerDnsName"] == DUPLICATE_NAME and new["id"] != old["id"]
    assert old["lastSeen"] < new["lastSeen"] and old["healthStatus"] == "Inactive"
    assert old["firstSeen"] < new["firstSeen"]
    assert machines_[NAMELESS]["computerDnsName"] is None
    assert [m["id"] for m in machines_.values() if m["computerDnsName"] == DUPLICATE_NAME] == [DUP_NEW, DUP_OLD]
    for mid in INVENTORY_IDS:
        spec = next(s for s in INVENTORY_MACHINES if s["id"] == mid)
        assert [kb["id"] for kb in machines_[mid]["missing_kbs"]] == spec["missing"]
        assert {data["software"][sid]["name"] for sid in machines_[mid]["software"]} == set(spec["software"])
        for sid in machines_[mid]["software"]:
            assert mid in data["software"][sid]["machines"]
        for kb in spec["missing"]:
            assert mid in data["kbs"][kb]["machines"]


def test_inventory_devices_leave_the_seeded_entities_alone(monkeypatch):
    """Added after every random draw: every other entity is as without them; only the counts of the
    software they have (exposedMachines, machineMissedOn) count them too."""
    with_them = Dataset(5, extra_software=4, extra_machines=3)
    monkeypatch.setattr(Dataset, "_add_inventory", lambda self: None)
    without = Dataset(5, extra_software=4, extra_machines=3)
    assert set(with_them.machines) == set(without.machines) | set(INVENTORY_IDS)
    assert set(with_them.software) == set(without.software) and with_them.kbs == without.kbs
    for mid, machine in without.machines.items():
        assert with_them.machines[mid] == machine and with_them.machine_missing[mid] == without.machine_missing[mid]
    for sid, software in without.software.items():
        assert {k: v for k, v in with_them.software[sid].items() if k != "exposedMachines"} == \
            {k: v for k, v in software.items() if k != "exposedMachines"}
        added = collections.Counter()
        for mid in INVENTORY_IDS:
            if sid in with_them.machine_software[mid]:
                added.update(kb for kb in with_them.machine_missing[mid]
                             if software["name"] in with_them.kbs[kb]["productsNames"])
        before = dict(without.software_missing[sid])
        assert dict(with_them.software_missing[sid]) == {kb: before.get(kb, 0) + added[kb]
                                                         for kb in set(before) | set(added)}
    assert data_module.INVENTORY_MACHINES is INVENTORY_MACHINES


def test_inventory_devices_over_the_api(emu, http):
    data = emu.data
    # by name: of the two devices named ws-dup01, the one seen last; the nameless device by its id
    assert api(http, emu, "/api/machines/" + DUPLICATE_NAME.upper()).json()["id"] == DUP_NEW
    for mid in INVENTORY_IDS:
        body = api(http, emu, "/api/machines/" + mid).json()
        assert {k: v for k, v in body.items() if k != "@odata.context"} == {
            k: v for k, v in data["machines"][mid].items() if k not in ("missing_kbs", "software")}
        served = api(http, emu, f"/api/machines/{mid}/getmissingkbs").json()["value"]
        assert served == data["machines"][mid]["missing_kbs"] and served
    assert machines(http, emu, f"computerDnsName eq '{DUPLICATE_NAME}'") == [DUP_NEW, DUP_OLD]
    # their software lists them, and counts them in machineMissedOn and exposedMachines
    for sid in data["machines"][NAMELESS]["software"]:
        refs = api(http, emu, f"/api/Software/{urllib.parse.quote(sid, safe='')}/machineReferences").json()["value"]
        ids = [r["id"] for r in refs]
        assert ids == data["software"][sid]["machines"] and NAMELESS in ids
        assert next(r for r in refs if r["id"] == NAMELESS)["computerDnsName"] is None
        assert sum(1 for r in refs if r["computerDnsName"] == DUPLICATE_NAME) == (2 if sid in data["machines"][
            DUP_NEW]["software"] else 0)
    win11 = "microsoft-_-windows_11"
    counts = {kb["id"]: kb["machineMissedOn"] for kb in data["software"][win11]["missing_kbs"]}
    owners = [mid for mid in data["software"][win11]["machines"]
              if "5034765" in [k["id"] for k in data["machines"][mid]["missing_kbs"]]]
    assert counts["5034765"] == len(owners) and {DUP_NEW, DUP_OLD} <= set(owners)


def test_inventory_devices_in_the_export(emu, http):
    headers = bearer(emu)
    records, dummy = follow(http, emu.url + "/api/machines/SoftwareVulnerabilitiesByMachine?pageSize=200000",
                            headers)
    truth = emu.export_truth()
    data = emu.data["machines"]
    for mid in INVENTORY_IDS:
        mine = [r for r in records if r["deviceId"] == mid]
        assert mine and all(r["deviceName"] == data[mid]["computerDnsName"] for r in mine)
        assert all(r["rbacGroupName"] == data[mid]["rbacGroupName"] for r in mine)
        kbs = {kb_of(r.get("recommendedSecurityUpdateId")) for r in mine} - {None}
        assert kbs == set(truth[mid]) == {kb["id"] for kb in data[mid]["missing_kbs"]}
    assert all("deviceName" in r and r["deviceName"] is None for r in records if r["deviceId"] == NAMELESS)
    assert emu.export_truth([NAMELESS, DUP_OLD]) == {NAMELESS: truth[NAMELESS], DUP_OLD: truth[DUP_OLD]}
    urls = http.get(emu.url + "/api/machines/SoftwareVulnerabilitiesExport", headers=headers).json()["exportFiles"]
    lines = []
    for url in urls:
        response = http.get(url)
        assert response.status_code == 200
        lines.extend(json.loads(line) for line in gzip.decompress(response.content).decode("utf-8").splitlines())
    nameless = [line for line in lines if line["DeviceId"] == NAMELESS]
    assert nameless and all("DeviceName" not in line for line in nameless)   # files leave an absent value out
    assert {line["DeviceName"] for line in lines if line["DeviceId"] in (DUP_NEW, DUP_OLD)} == {DUPLICATE_NAME}
    for mid in INVENTORY_IDS:
        kbs = collections.Counter(kb_of(line.get("RecommendedSecurityUpdateId")) for line in lines
                                  if line["DeviceId"] == mid)
        kbs.pop(None, None)
        assert dict(kbs) == truth[mid]
    tags = [line for line in lines if line["DeviceId"] == TAGS_DEVICE]
    assert tags and not any("{{" in json.dumps(line) for line in tags)   # tags are not in the export
