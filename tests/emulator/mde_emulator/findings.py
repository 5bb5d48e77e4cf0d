"""The vulnerability export's findings, derived per device from the dataset, with a change history.

One record per (device, software, version, CVE), as Defender's export has it, plus one record with
no CVE for installed software without any (Microsoft's samples show such records). Every record is
drawn from the device's own RNG (seed and device id), so a device's findings are the same whatever
else the dataset holds, and the export of a fleet of 100,000 devices is generated one device at a
time, never held in memory.

What ties the export to the rest of the dataset: a device's KB findings (``recommendedSecurityUpdateId``
all digits, or a number, or ``KB`` + digits) are exactly the KBs that ``getmissingkbs`` gives that
device; each KB has 1 to 5 findings on it (CVEs from the KB's pool), split over the device's
software that the KB belongs to. Everything else is a finding without a KB: third-party software
with a vendor advisory (``ADV 200002``, ``193220``), Linux advisories (``RHSA-2024:9315``,
``USN-7663-1``), OS weaknesses without a fix.

The change history covers the 14 days before the snapshot in 56 six-hour runs (the delta route):
February 2024's KBs (released 2024-02-13) become New on the devices they apply to and are Fixed on
those that installed them; some older KBs are Fixed (installed during the window) or New (software
installed recently); some findings are Updated; some devices move from the "Unassigned" device
group to their current one, which Defender reports as a Fixed (old group) and a New (new group) of
every open finding at the same time; some Chrome installs are upgraded (Fixed old version, New new
version). The ground truth is computed from the same history (``DeviceHistory.delta_truth``).

The history is drawn at the default snapshot (2024-02-20 06:00 UTC); another snapshot (``Timeline``)
moves every time of it by the same offset, a multiple of six hours, so the draws do not change.
Changes added at run time (``Change``, ``ExportModel.add_changes``) come after the runs: each
finding keeps them in ``Finding.added``, an added RBAC move in ``DeviceHistory.added_moves``.
"""

import collections
import datetime
import hashlib
import random

from .data import DOCUMENTED_KB, SNAPSHOT

RUNS = 56                                   # six-hour delta runs in the 14 days before the snapshot
RUN = datetime.timedelta(hours=6)
OLDEST_SINCE = SNAPSHOT - datetime.timedelta(days=14)
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
FEBRUARY = datetime.datetime(2024, 2, 13, 18, 0, tzinfo=datetime.timezone.utc)
JANUARY = datetime.datetime(2024, 1, 9, 18, 0, tzinfo=datetime.timezone.utc)
RELEASES = {"5034763": FEBRUARY, "5034765": FEBRUARY, "5034768": FEBRUARY, "5034770": FEBRUARY,
            "5002519": datetime.datetime(2023, 12, 12, 18, 0, tzinfo=datetime.timezone.utc),
            DOCUMENTED_KB["id"]: datetime.datetime(2020, 3, 10, 17, 0, tzinfo=datetime.timezone.utc)}
JANUARY_ROLLUPS = {"5034122", "5034123", "5034127", "5034129"}
FEBRUARY_ROLLUPS = {"5034763", "5034765", "5034768", "5034770"}
OLD_GROUP = ("Unassigned", 0)              # where a device that moved group was before
MOVED_HOSTS = ("ws-0002.contoso.local", "srv-app01.contoso.local")  # always move, whatever the seed
KB_FINDING_WEIGHTS = (50, 25, 12, 8, 5)     # 1..5 findings per KB on a device
# A change added at run time (Emulator.add_delta_changes): seq (its number), device id, kb (None: every open
# finding of an RBAC move), status ("New", "Fixed", or None for a move), rbac_move, at (a UTC datetime).
Change = collections.namedtuple("Change", "seq device_id kb status rbac_move at")

# osPlatform -> (build prefix, update build revision in December, January, February)
WINDOWS_BUILDS = {
    "Windows10": ("10.0.19045", (3803, 3930, 4046)),
    "Windows11": ("10.0.22631", (2861, 3007, 3155)),
    "WindowsServer2019": ("10.0.17763", (5206, 5329, 5458)),
    "WindowsServer2022": ("10.0.20348", (2159, 2227, 2322)),
}
LINUX_OS_VERSIONS = {"rhel": "enterprise_linux_9.4", "ubuntu": "ubuntu_linux_22.04"}
WINDOWS_REGISTRY = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion"
UNINSTALL = "HKEY_LOCAL_MACHINE\\SOFTWARE\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\"
# software name -> versions, disk paths, registry paths, advisory (recommendedSecurityUpdate of a finding
# without a KB), advisory id and URL (Linux), CVEs without a KB (low, high).
SOFTWARE_DETAILS = {
    "internet_explorer": {"registry": ["HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Internet Explorer"]},
    ".net_framework": {"versions": ["4.8.09032", "4.8.04161"],
                       "registry": ["SOFTWARE\\Microsoft\\NET Framework Setup\\NDP\\v4\\Full"]},
    "office": {"versions": ["16.0.17126.20132", "16.0.16731.20504"],
               "registry": ["HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Office\\ClickToRun\\Configuration"]},
    "sql_server": {"versions": ["15.0.4345.5"],
                   "registry": ["HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Microsoft SQL Server\\MSSQL15.MSSQLSERVER"]},
    "edge": {"versions": ["80.0.361.66"], "disk": ["C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe"]},
    "edge_chromium-based": {"versions": ["121.0.2277.128", "121.0.2277.106", "120.0.2210.144"],
                            "disk": ["C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe"],
                            "advisory": "ADV 200002", "cves": (0, 3)},
    "chrome": {"versions": ["121.0.6167.161", "121.0.6167.140", "120.0.6099.225"],
               "disk": ["C:\\Program Files (x86)\\Google\\Chrome\\Application\\chrome.exe"],
               "registry": [UNINSTALL + "Google Chrome"], "advisory": "ADV 200002", "cves": (1, 4)},
    "firefox": {"versions": ["122.0.1.0", "122.0.0.0", "121.0.1.0"],
                "disk": ["C:\\Program Files (x86)\\Mozilla Firefox\\firefox.exe"],
                "registry": [UNINSTALL + "Mozilla Firefox 122.0 (x86 en-US)"], "advisory": "193220", "cves": (1, 4)},
    "notepad++": {"versions": ["8.6.0.0", "8.5.8.0"], "disk": ["C:\\Program Files\\Notepad++\\notepad++.exe"],
                  "advisory": "Notepad++ 8.6.2", "cves": (1, 2)},
    "git": {"versions": ["2.43.0.0", "2.42.0.2"], "disk": ["C:\\Program Files\\Git\\cmd\\git.exe"],
            "advisory": "Git for Windows 2.43.1", "cves": (1, 2)},
    "acrobat_reader_dc": {"versions": ["23.8.20470.0", "23.6.20360.0"],
                          "disk": ["C:\\Program Files\\Adobe\\Acrobat DC\\Acrobat\\Acrobat.exe"],
                          "advisory": "APSB24-07", "cves": (1, 3)},
    "7-zip": {"versions": ["23.1.0.0"], "disk": ["C:\\Program Files\\7-Zip\\7z.exe"]},
    "kernel": {"versions": ["0:5.14.0-427.42.1.el9_4"], "advisory_id": "RHSA-2024:9315", "cves": (2, 5),
               "advisory_url": "https://access.redhat.com/errata/RHSA-2024:9315",
               "oval": "oval:com.redhat.rhsa:def:20249315", "batch": "Red_hat November 2024 Vulnerabilities",
               "batch_url": "https://security.access.redhat.com/data/oval/v2/RHEL9/rhel-9.4-eus.oval.xml.bz2"},
    "openssl": {"versions": ["1:3.0.7-28.el9_4"], "advisory_id": "RHSA-2025:0595", "cves": (1, 2),
                "advisory_url": "https://access.redhat.com/errata/RHSA-2025:0595",
                "oval": "oval:com.redhat.rhsa:def:20250595", "batch": "Red_hat January 2025 Vulnerabilities",
                "batch_url": "https://security.access.redhat.com/data/oval/v2/RHEL9/rhel-9.4-eus.oval.xml.bz2"},
    "ubuntu-openssl": {"versions": ["3.0.2-0ubuntu1.15"], "advisory_id": "USN-7278-1", "cves": (1, 2),
                       "advisory_url": "https://ubuntu.com/security/notices/USN-7278-1",
                       "oval": "oval:com.ubuntu.jammy:def:72781000000", "batch": "Ubuntu February 2025 Vulnerabilities",
                       "batch_url": "https://security-metadata.canonical.com/oval/com.ubuntu.jammy.usn.oval.xml.bz2"},
    "thunderbird-gnome-support_for_linux": {
        "versions": ["1:115.18.0+build1-0ubuntu0.22.04.1"], "advisory_id": "USN-7663-1", "cves": (1, 3),
        "advisory_url": "https://ubuntu.com/security/notices/USN-7663-1",
        "oval": "oval:com.ubuntu.jammy:def:76631000000", "batch": "Ubuntu January 2025 Vulnerabilities",
        "batch_url": "https://security-metadata.canonical.com/oval/com.ubuntu.jammy.usn.oval.xml.bz2"},
}
OS_NO_FIX_CVES = (0, 2)
EXPLOITABILITY = (("NoExploit", 70), ("ExploitIsPublic", 15), ("ExploitIsVerified", 10), ("ExploitIsInKit", 5))


def run_time(run):
    """When delta run ``run`` (0..55) happened at the default snapshot; run 55 is the snapshot."""
    return SNAPSHOT - RUN * (RUNS - 1 - run)


RUN_TIMES = [run_time(run) for run in range(RUNS)]


def bucket_start(moment):
    """The start of the six-hour bucket (00, 06, 12, 18 UTC) that ``moment`` falls in."""
    hours = int((moment - EPOCH).total_seconds() // 3600)
    return EPOCH + datetime.timedelta(hours=hours - hours % 6)


def first_run_since(moment):
    """The first run that a delta read since ``moment`` returns (RUNS if none), at the default snapshot."""
    return DEFAULT_TIMELINE.first_run_since(moment)


def _iso_ms(moment):
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def iso_ms(moment):
    """The delta's eventTimestamp form (``yyyy-MM-ddTHH:mm:ss.fffZ``)."""
    return _iso_ms(moment)


def _space(moment):
    return f"{moment:%Y-%m-%d %H:%M:%S}"


def _event_moments():
    moments = []
    for run in range(RUNS):
        rng = random.Random(f"delta-run:{run}")
        moments.append(run_time(run) + datetime.timedelta(minutes=rng.randint(2, 9), seconds=rng.randint(0, 59),
                                                          milliseconds=rng.randint(0, 999)))
    return moments


EVENT_MOMENTS = _event_moments()
EVENT_TIMESTAMPS = [_iso_ms(moment) for moment in EVENT_MOMENTS]


def parse_snapshot(value, wall=None):
    """The snapshot of an emulator: None (the default, 2024-02-20 06:00 UTC), a datetime or ISO 8601 text
    on a six-hour boundary (00, 06, 12 or 18 UTC), or "now": the start of the six-hour bucket of ``wall``
    (a UTC datetime, the emulator's wall clock at start)."""
    if value is None:
        return SNAPSHOT
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == "now":
            if wall is None:
                wall = datetime.datetime.now(datetime.timezone.utc)
            return bucket_start(wall)
        try:
            value = datetime.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" else text)
        except ValueError:
            raise ValueError(f"snapshot must be an ISO 8601 UTC time (e.g. 2026-03-02T12:00:00Z) or 'now', "
                             f"got {value!r}") from None
    if not isinstance(value, datetime.datetime):
        raise ValueError(f"snapshot must be an ISO 8601 UTC time or 'now', got {value!r}")
    value = value.replace(tzinfo=datetime.timezone.utc) if value.tzinfo is None else value.astimezone(
        datetime.timezone.utc)
    if value != bucket_start(value):
        raise ValueError(f"snapshot must be the start of a six-hour bucket (00:00, 06:00, 12:00 or 18:00 UTC), "
                         f"got {value:%Y-%m-%dT%H:%M:%S.%fZ}; 'now' takes the current one")
    return value


class Timeline:  # pylint: disable=too-many-instance-attributes
    """The times of one snapshot: the 56 runs of the 14 days before it, their event times, the oldest
    sinceTime. The history is drawn at the default snapshot and moved by ``offset`` (a multiple of six
    hours), so another snapshot has the same findings and changes, at times moved with it."""

    def __init__(self, snapshot=SNAPSHOT):
        self.snapshot = snapshot
        self.offset = snapshot - SNAPSHOT
        self.oldest_since = snapshot - datetime.timedelta(days=14)
        self.run_times = [at + self.offset for at in RUN_TIMES]
        self.event_moments = [at + self.offset for at in EVENT_MOMENTS]
        self.event_timestamps = [_iso_ms(moment) for moment in self.event_moments]
        self.generated_time = f"{snapshot:%Y-%m-%dT%H:%M:%SZ}"
        self.time_path = f"{snapshot:%Y-%m-%d/%H%M}/"

    def release(self, kb):
        """When a KB was released, on this timeline (moved with the snapshot)."""
        return RELEASES.get(kb, JANUARY) + self.offset

    def first_run_since(self, moment):
        """The first run that a delta read since ``moment`` returns (RUNS if none)."""
        start = bucket_start(moment)
        return next((run for run, at in enumerate(self.run_times) if at >= start), RUNS)


DEFAULT_TIMELINE = Timeline(SNAPSHOT)


def _weighted(rng, pairs):
    total = sum(weight for dummy, weight in pairs)
    pick = rng.random() * total
    for value, weight in pairs:
        pick -= weight
        if pick < 0:
            return value
    return pairs[-1][0]


class Software:  # pylint: disable=too-few-public-methods,too-many-instance-attributes
    """One installed software of one device, as the export names it."""

    __slots__ = ("sid", "vendor", "name", "version", "disk", "registry", "details", "reference")

    def __init__(self, sid, vendor, name, version, details):  # pylint: disable=too-many-arguments
        self.sid, self.vendor, self.name, self.version, self.details = sid, vendor, name, version, details
        self.disk = details.get("disk")
        self.registry = details.get("registry")
        self.reference = f"va-_-{vendor}-_-{name}"


class Finding:  # pylint: disable=too-few-public-methods,too-many-instance-attributes
    """One record's content: software, CVE, the recommended update and how the record shows it."""

    __slots__ = ("software", "cve", "kb", "kb_form", "update", "update_id", "update_url", "available", "first",
                 "batch", "shape", "open0", "events", "added")

    def __init__(self, software, cve, first, shape):
        self.software, self.cve, self.first, self.shape = software, cve, first, shape
        self.kb = self.kb_form = self.update = self.update_id = self.update_url = self.batch = None
        self.available = False
        self.open0 = True          # open when the 14 days began
        self.events = []           # [(run, status)], status New/Fixed/Updated, in run order
        self.added = ()            # ((at, seq, status), ...): changes added at run time, after the runs

    def open_at_end(self):
        """In the current export: after the runs and the changes added at run time."""
        state = self.open0
        for dummy, status in self.events:
            if status != "Updated":
                state = status == "New"
        for dummy, dummy2, status in self.added:
            state = status == "New"
        return state


class Device:  # pylint: disable=too-few-public-methods,too-many-instance-attributes
    """What every record of a device repeats."""

    __slots__ = ("id", "name", "platform", "os_version", "group", "group_id", "last_seen", "last_seen_space",
                 "last_seen_space7")

    def __init__(self, entity, os_version):
        self.id = entity["id"]
        self.name = entity["computerDnsName"]
        self.platform = entity["osPlatform"]
        self.os_version = os_version
        self.group = entity["rbacGroupName"]
        self.group_id = entity["rbacGroupId"]
        self.last_seen = datetime.datetime.strptime(entity["lastSeen"][:19], "%Y-%m-%dT%H:%M:%S").replace(
            tzinfo=datetime.timezone.utc)
        self.last_seen_space = _space(self.last_seen)
        self.last_seen_space7 = f"{entity['lastSeen'][:10]} {entity['lastSeen'][11:27]}"


class DeviceHistory:
    """A device's findings and their changes over the 14 days; the ground truth of both."""

    def __init__(self, device, findings, kb_findings, move, software=None):  # pylint: disable=too-many-arguments
        self.device = device
        self.findings = findings          # every Finding, in record order
        self.kb_findings = kb_findings    # kb -> [Finding] (the KB's findings on this device, current or past)
        self.move = move                  # run at which the device moved from OLD_GROUP, or None
        self.software = software or []    # the device's Software, in its order
        self.added_moves = []             # [(at, seq, [Finding])]: RBAC moves added at run time

    def current(self):
        """The findings of the snapshot, in record order."""
        return [f for f in self.findings if f.open_at_end()]

    def kb_counts(self):
        """kb -> number of this device's findings that the KB fixes, in the snapshot."""
        counts = {}
        for kb, findings in self.kb_findings.items():
            current = sum(1 for f in findings if f.open_at_end())
            if current:
                counts[kb] = current
        return counts

    def events(self):
        """[(run, order, status, finding, old_group)]: what the delta reports, in report order."""
        result = []
        for order, finding in enumerate(self.findings):
            for run, status in finding.events:
                # A change in the run of the move happens in the new group, after the move's pair.
                result.append((run, order, 3 if run == self.move else 0, status, finding,
                               self.move is not None and run < self.move))
        if self.move is not None:
            rng = random.Random(f"rbac-order:{self.device.id}")
            for order, finding in enumerate(self.findings):
                if self._open_before(finding, self.move):
                    fixed_first = rng.random() < 0.5
                    result.append((self.move, order, 1 if fixed_first else 2, "Fixed", finding, True))
                    result.append((self.move, order, 2 if fixed_first else 1, "New", finding, False))
        result.sort(key=lambda e: (e[0], e[1], e[2]))
        return result

    def added_events(self):
        """[(at, seq, order, status, finding, old_group)]: what the delta reports of the changes added at run
        time, in report order (an added RBAC move: the Fixed in the old group, then the New)."""
        order_of = {id(finding): order for order, finding in enumerate(self.findings)}
        result = []
        for finding in self.findings:
            for at, seq, status in finding.added:
                result.append((at, seq, order_of[id(finding)], 0, status, finding, False))
        for at, seq, findings in self.added_moves:
            for finding in findings:
                result.append((at, seq, order_of[id(finding)], 1, "Fixed", finding, True))
                result.append((at, seq, order_of[id(finding)], 2, "New", finding, False))
        result.sort(key=lambda e: e[:4])
        return [(at, seq, order, status, finding, old) for at, seq, order, dummy, status, finding, old in result]

    @staticmethod
    def _open_before(finding, run, since_at=None):
        """Open before run ``run`` and, of the changes added at run time, before ``since_at``."""
        state = finding.open0
        for at, status in finding.events:
            if at >= run:
                break
            if status != "Updated":
                state = status == "New"
        if since_at is not None:
            for at, dummy, status in finding.added:
                if at >= since_at:
                    break
                state = status == "New"
        return state

    def delta_truth(self, since_run, since_at=None):
        """(new, fixed, transient) KB lists for a read that returns runs ``since_run`` onward (and the changes
        added at run time from ``since_at`` on), RBAC moves cancelled: new = missing now and not before;
        fixed = missing before and not now; transient = became missing and was fixed again in the range
        (neither before nor now)."""
        new, fixed, transient = [], [], []
        for kb, findings in self.kb_findings.items():
            before = any(self._open_before(f, since_run, since_at) for f in findings)
            now = any(f.open_at_end() for f in findings)
            if now and not before:
                new.append(kb)
            elif before and not now:
                fixed.append(kb)
            elif not before and not now and (
                    any(status == "New" and run >= since_run for f in findings for run, status in f.events)
                    or any(status == "New" and (since_at is None or at >= since_at)
                           for f in findings for at, dummy, status in f.added)):
                transient.append(kb)
        return new, fixed, transient


class ExportModel:  # pylint: disable=too-many-instance-attributes
    """Draws every device's findings and history from the dataset (``history(device_id)``)."""

    def __init__(self, dataset, findings_per_device=None):
        if findings_per_device is not None and (isinstance(findings_per_device, bool)
                                                or not isinstance(findings_per_device, int)
                                                or not 1 <= findings_per_device <= 2000):
            raise ValueError(f"findings_per_device must be an integer between 1 and 2000, got {findings_per_device!r}")
        self.data = dataset
        self.per_device = findings_per_device
        self.seed = dataset.seed
        self.timeline = Timeline(dataset.snapshot)
        self.changes = []       # [Change]: added at run time, in the order of their time
        self._added = {}        # device id -> [Change]
        self._kb_pools = self._pools()
        self._cves = {}
        self._software_pool = {sid: 50000 + index * 400 for index, sid in enumerate(sorted(dataset.software))}
        self._moved = {mid for mid, m in ((m["id"], m) for m in dataset.machines.own())
                       if m["computerDnsName"] in MOVED_HOSTS}

    def _pools(self):
        """kb -> (year, first CVE number, size): disjoint CVE ranges, one per KB."""
        pools, number = {}, 20000
        for kb in sorted(self.data.kbs):
            size = max(1, self.data.kbs[kb]["cveAddressed"])
            if kb == DOCUMENTED_KB["id"]:
                pools[kb] = ("2020", 800, size)
                continue
            pools[kb] = ("2024", number, size)
            number += size
        return pools

    def device_ids(self):
        """Every device of the export, in export order."""
        return iter(self.data.machines)

    def _cve(self, cve):
        """(cvssScore, severity, exploitability) of a CVE, the same on every device."""
        info = self._cves.get(cve)
        if info is None:
            rng = random.Random(f"cve:{cve}")
            score = round(rng.uniform(3.1, 9.8), 1)
            if rng.random() < 0.15:
                score = float(int(score))
            severity = "Critical" if score >= 9 else "High" if score >= 7 else "Medium" if score >= 4 else "Low"
            info = self._cves[cve] = (int(score) if score == int(score) else score, severity,
                                      _weighted(rng, EXPLOITABILITY))
        return info

    def cve_info(self, cve):
        """Public for the record builders."""
        return self._cve(cve)

    # -- one device -----------------------------------------------------------------------------

    def _device(self, mid):
        data = self.data
        entity = data.machines[mid]
        distribution = data.linux_distribution.get(mid)
        if distribution:
            return Device(entity, LINUX_OS_VERSIONS[distribution])
        prefix, revisions = WINDOWS_BUILDS[entity["osPlatform"]]
        missing = set(data.base_missing[mid])
        revision = revisions[0] if missing & JANUARY_ROLLUPS else revisions[1] if missing & FEBRUARY_ROLLUPS \
            else revisions[2]
        return Device(entity, f"{prefix}.{revision}")

    def _software(self, rng, device, sid):
        entity = self.data.software[sid]
        name = entity["name"]
        details = SOFTWARE_DETAILS.get(f"{entity['vendor']}-{name}") or SOFTWARE_DETAILS.get(name)
        if name in self.data.os_software.values():
            return Software(sid, entity["vendor"], name, device.os_version, {"registry": [WINDOWS_REGISTRY]})
        if name == "internet_explorer":
            build = device.os_version.split(".", 2)[2]
            return Software(sid, entity["vendor"], name, f"11.0.{build}", details)
        if details is None:  # synthetic line-of-business software
            digest = hashlib.sha1(sid.encode("utf-8")).digest()  # nosec - a version number, not security
            folder = f"{entity['vendor'].capitalize()}\\{name.replace('_', ' ').title()}"
            details = {"disk": [f"C:\\Program Files\\{folder}\\{name.split('_')[0]}.exe"]}
            return Software(sid, entity["vendor"], name, f"{1 + digest[0] % 9}.{digest[1] % 10}.{100 + digest[2]}.0",
                            details)
        return Software(sid, entity["vendor"], name, rng.choice(details["versions"]), details)

    @staticmethod
    def _shape(rng):
        """Bits that decide how a record shows absent values (see records.py)."""
        return rng.getrandbits(8)

    def history(self, mid):  # pylint: disable=too-many-locals
        """The device's findings and their history (deterministic from the seed and the device id)."""
        data = self.data
        rng = random.Random(f"{self.seed}:export:{mid}")
        device = self._device(mid)
        software = [self._software(rng, device, sid) for sid in data.machine_software[mid]]
        by_name = {}
        for item in software:
            by_name.setdefault(item.name, item)
        missing = set(data.base_missing[mid])
        findings, kb_findings = [], {}
        for kb in data.applicable_kbs(mid):
            info = data.kbs[kb]
            products = [by_name[name] for name in info["productsNames"] if name in by_name]
            timeline = self._kb_timeline(rng, kb, kb in missing, device)
            if timeline is None:
                continue
            open0, events, first = timeline
            year, start, size = self._kb_pools[kb]
            count = min(size, _weighted(rng, list(zip(range(1, 6), KB_FINDING_WEIGHTS))))
            numbers = rng.sample(range(size), count)
            kb_list = kb_findings[kb] = []
            for position, number in enumerate(sorted(numbers)):
                item = products[0] if position == 0 or len(products) == 1 else rng.choice(products)
                finding = Finding(item, f"CVE-{year}-{start + number:04d}", first, self._shape(rng))
                finding.kb, finding.kb_form = kb, _weighted(rng, ((0, 80), (1, 10), (2, 10)))
                finding.update, finding.update_url, finding.available = info["name"], info["url"], True
                finding.batch = (f"Microsoft {info['name']}" if "Security Updates" in info["name"] else None,
                                 f"https://msrc.microsoft.com/update-guide/releaseNote/"
                                 f"{first - self.timeline.offset:%Y-%b}")
                finding.open0, finding.events = open0, list(events)
                if finding.open_at_end() and rng.random() < 0.04 and (not events or events[-1][0] < RUNS - 1):
                    finding.events.append((rng.randint(events[-1][0] + 1 if events else 0, RUNS - 1), "Updated"))
                kb_list.append(finding)
                findings.append(finding)
        findings.extend(self._other_findings(rng, device, software))
        with_cves = {f.software.sid for f in findings if f.open_at_end()}
        for item in software:
            if item.sid not in with_cves:
                findings.append(Finding(item, None, device.last_seen - datetime.timedelta(days=rng.randint(20, 400)),
                                        self._shape(rng)))
        if self.per_device is not None:
            current = sum(1 for f in findings if f.open_at_end())
            findings.extend(self._padding(rng, device, software, self.per_device - current))
        move = None
        if mid in self._moved or rng.random() < 0.03:
            move = rng.randint(1, RUNS - 2)
        self._upgrade_chrome(rng, findings)
        history = DeviceHistory(device, findings, kb_findings, move, software)
        for change in self._added.get(mid, ()):
            self._apply(history, change)
        return history

    # -- changes added at run time --------------------------------------------------------------

    def add_changes(self, changes):
        """Append Changes (validated by the caller, in time order) to the history."""
        for change in changes:
            self.changes.append(change)
            self._added.setdefault(change.device_id, []).append(change)

    def _apply(self, history, change):
        """One added change on a device's history (its findings and their ``added`` changes)."""
        kb, stamp = change.kb, (change.at, change.seq)
        if change.rbac_move:
            pool = history.kb_findings.get(kb, []) if kb is not None else history.findings
            history.added_moves.append(stamp + ([f for f in pool if f.open_at_end()],))
            return
        findings = history.kb_findings.get(kb)
        if change.status == "New":
            if not findings:
                findings = history.kb_findings[kb] = [self._added_finding(history, kb, change.at)]
                history.findings.extend(findings)
            for finding in findings:
                finding.added += (stamp + ("New",),)
            return
        for finding in findings or ():
            if finding.open_at_end():
                finding.added += (stamp + ("Fixed",),)

    def _added_finding(self, history, kb, at):
        """The finding of a KB a device had no finding of, made New at run time: on the device's software
        the KB names (else its first software), one CVE of the KB's pool."""
        rng = random.Random(f"{self.seed}:added:{history.device.id}:{kb}")
        info = self.data.kbs[kb]
        by_name = {item.name: item for item in history.software}
        products = [by_name[name] for name in info["productsNames"] if name in by_name]
        item = products[0] if products else history.software[0]
        year, start, size = self._kb_pools[kb]
        finding = Finding(item, f"CVE-{year}-{start + rng.randrange(size):04d}", at, self._shape(rng))
        finding.kb, finding.kb_form = kb, 0
        finding.update, finding.update_url, finding.available = info["name"], info["url"], True
        finding.batch = (f"Microsoft {info['name']}" if "Security Updates" in info["name"] else None,
                         f"https://msrc.microsoft.com/update-guide/releaseNote/{at - self.timeline.offset:%Y-%b}")
        finding.open0 = False
        return finding

    def _kb_timeline(self, rng, kb, missing_now, device):
        """(open at the start, [(run, status)], first seen) of a KB on a device, or None if it leaves no trace."""
        timeline = self.timeline
        release = timeline.release(kb)
        if release >= timeline.oldest_since:
            first_run = next((run for run, at in enumerate(timeline.run_times) if at > release), RUNS - 1)
            new_run = min(RUNS - 1, first_run + _weighted(rng, ((0, 40), (1, 30), (2, 20), (3, 10))))
            first = timeline.event_moments[new_run]
            if missing_now:
                return False, [(new_run, "New")], first
            if new_run >= RUNS - 1:
                return None
            return False, [(new_run, "New"), (rng.randint(new_run + 1, RUNS - 1), "Fixed")], first
        first = min(release + datetime.timedelta(days=rng.randint(0, 12), seconds=rng.randint(0, 86399)),
                    timeline.oldest_since - datetime.timedelta(hours=rng.randint(1, 300)))
        if missing_now:
            if rng.random() < 0.05:  # software installed, or device onboarded, in the last 14 days
                run = rng.randint(0, RUNS - 1)
                return False, [(run, "New")], timeline.event_moments[run]
            return True, [], min(first, device.last_seen)
        if rng.random() < 0.25:     # installed in the last 14 days
            return True, [(rng.randint(0, RUNS - 1), "Fixed")], first
        return None

    def _other_findings(self, rng, device, software):
        """Findings without a KB: third-party advisories, Linux advisories, OS weaknesses without a fix."""
        result = []
        for item in software:
            details = item.details
            if item.name in self.data.os_software.values():
                low, high = OS_NO_FIX_CVES
            elif "cves" in details:
                low, high = details["cves"]
            else:
                continue
            count = rng.randint(low, high)
            if not count:
                continue
            base = self._software_pool[item.sid]
            for number in sorted(rng.sample(range(400), count)):
                cve = f"CVE-2023-{base + number:05d}"
                first = device.last_seen - datetime.timedelta(days=rng.randint(15, 500), seconds=rng.randint(0, 86399))
                finding = Finding(item, cve, first, self._shape(rng))
                if "advisory_id" in details:  # Linux
                    finding.update_id, finding.update_url = details["advisory_id"], details["advisory_url"]
                    finding.update, finding.available = f"{cve}_{details['oval']}", True
                    finding.batch = (details["batch"], details["batch_url"])
                elif "advisory" in details:
                    finding.update, finding.available = details["advisory"], True
                if rng.random() < 0.03:
                    finding.events.append((rng.randint(0, RUNS - 1), "Updated"))
                result.append(finding)
        return result

    def _padding(self, rng, device, software, count):
        """``count`` more findings without a fix on the OS (or the first software), up to findings_per_device."""
        if count <= 0 or not software:
            return []
        item = software[0]
        base = 20000 if item.name in self.data.os_software.values() else self._software_pool[item.sid] + 200
        size = 29000 if base == 20000 else 200
        result = []
        for number in sorted(rng.sample(range(size), min(count, size))):
            cve = f"CVE-2022-{base + number:05d}"
            first = device.last_seen - datetime.timedelta(days=rng.randint(30, 700), seconds=rng.randint(0, 86399))
            result.append(Finding(item, cve, first, self._shape(rng)))
        return result

    @staticmethod
    def _upgrade_chrome(rng, findings):
        """Sometimes Chrome was upgraded in the window: Fixed for the old version, New for the current one."""
        chrome = [f for f in findings if f.software.name == "chrome" and f.cve and not f.events]
        if not chrome or rng.random() >= 0.12:
            return
        current = chrome[0].software
        older = [v for v in current.details["versions"] if v != current.version]
        if not older:
            return
        old = Software(current.sid, current.vendor, current.name, older[-1], current.details)
        run = rng.randint(0, RUNS - 1)
        for finding in chrome:
            twin = Finding(old, finding.cve, finding.first, finding.shape)
            twin.update, twin.available = finding.update, finding.available
            twin.events = [(run, "Fixed")]
            finding.open0, finding.events = False, [(run, "New")]
            findings.insert(findings.index(finding), twin)
