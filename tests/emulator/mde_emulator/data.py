"""The seeded dataset: software, machines, KBs and the relations between them.

Only the relations are random (who runs what, who installed which update);
the catalog of products and KBs is fixed and modelled on real January and
February 2024 Patch Tuesday releases so that responses look like production.
Aggregates (``machineMissedOn``, ``exposedMachines``) are computed from the
relations, so a client's de-duplication and counting can be checked exactly.

On top of that come the entities the collection's documentation names (``DOCUMENTED_*``):
Microsoft's own example software ``microsoft-_-edge`` with its documented getmissingkbs record,
whose ``machineMissedOn`` (240) is fixed to Microsoft's sample instead of computed, and the
example devices. They are the same for every seed and are added after every random draw, so the
seeded data is the same with or without them. So do, after those, two Linux devices and their
software (``LINUX_*``: no KBs, advisories in the vulnerability export), then the devices an
inventory of ``GET /api/machines`` must cope with (``INVENTORY_MACHINES``: template-like tags, two
devices with one name, a device without a name; they miss seeded KBs, counted in the aggregates),
and the generated fleet (``fleet=N``, see ``fleet.py``), whose devices are drawn per index from
their own RNG.
"""

import array
import collections.abc
import copy
import datetime
import hashlib
import random
import uuid

CATALOG_URL = "https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB{}"
# The data is a snapshot taken at a fixed instant, so it does not depend on when the emulator runs (by
# default: ``Dataset(snapshot=...)`` moves every time of the data with another instant, the draws stay).
SNAPSHOT = datetime.datetime(2024, 2, 20, 6, 0, 0, tzinfo=datetime.timezone.utc)

# (vendor, name, weaknesses range). Software without KBs below still has weaknesses:
# third-party products and Edge are patched outside Windows Update.
SOFTWARE_CATALOG = [
    ("microsoft", "windows_10", (350, 900)),
    ("microsoft", "windows_11", (250, 700)),
    ("microsoft", "windows_server_2019", (400, 950)),
    ("microsoft", "windows_server_2022", (250, 650)),
    ("microsoft", "office", (40, 180)),
    ("microsoft", ".net_framework", (10, 60)),
    ("microsoft", "edge_chromium-based", (20, 120)),
    ("microsoft", "internet_explorer", (60, 140)),
    ("microsoft", "sql_server", (5, 30)),
    ("notepad_plus_plus", "notepad++", (1, 12)),
    ("git-scm", "git", (1, 10)),
    ("google", "chrome", (30, 200)),
    ("mozilla", "firefox", (20, 150)),
    ("adobe", "acrobat_reader_dc", (15, 80)),
    ("7-zip", "7-zip", (0, 0)),
]

OS_SOFTWARE = {
    "Windows10": "windows_10",
    "Windows11": "windows_11",
    "WindowsServer2019": "windows_server_2019",
    "WindowsServer2022": "windows_server_2022",
}
OS_DETAILS = {  # osPlatform: (version, osBuild)
    "Windows10": ("22H2", 19045),
    "Windows11": ("23H2", 22631),
    "WindowsServer2019": ("1809", 17763),
    "WindowsServer2022": ("21H2", 20348),
}

# (kb, name, productsNames, platform it applies to or None, cveAddressed range).
# Monthly rollups carry MDE's "<Month> <Year> Security Updates" name (the same name for
# several KBs, as in production); the others carry their Update Catalog titles.
KB_CATALOG = [
    ("5034122", "January 2024 Security Updates", ["windows_10", "internet_explorer"], "Windows10", (45, 60)),
    ("5034763", "February 2024 Security Updates", ["windows_10", "internet_explorer"], "Windows10", (60, 75)),
    ("5034441", "2024-01 Security Update for Windows 10 Version 22H2 for x64-based Systems (KB5034441)",
     ["windows_10"], "Windows10", (1, 1)),
    ("5034123", "January 2024 Security Updates", ["windows_11"], "Windows11", (35, 50)),
    ("5034765", "February 2024 Security Updates", ["windows_11"], "Windows11", (55, 70)),
    ("5034127", "January 2024 Security Updates", ["windows_server_2019", "internet_explorer"],
     "WindowsServer2019", (45, 60)),
    ("5034768", "February 2024 Security Updates", ["windows_server_2019", "internet_explorer"],
     "WindowsServer2019", (60, 75)),
    ("5034129", "January 2024 Security Updates", ["windows_server_2022"], "WindowsServer2022", (40, 55)),
    ("5034770", "February 2024 Security Updates", ["windows_server_2022"], "WindowsServer2022", (55, 70)),
    ("5034439", "2024-01 Security Update for Microsoft server operating system version 21H2 for x64-based Systems "
     "(KB5034439)", ["windows_server_2022"], "WindowsServer2022", (1, 1)),
    ("5033909", "2024-01 Cumulative Update for .NET Framework 3.5, 4.8 and 4.8.1 for Windows 10 Version 22H2 for x64 "
     "(KB5033909)", [".net_framework", "windows_10"], "Windows10", (2, 4)),
    ("5033920", "2024-01 Cumulative Update for .NET Framework 3.5 and 4.8.1 for Windows 11, version 22H2 and 23H2 "
     "for x64 (KB5033920)", [".net_framework", "windows_11"], "Windows11", (2, 4)),
    ("5033914", "2024-01 Cumulative Update for .NET Framework 3.5, 4.7.2 and 4.8 for Windows Server 2019 for x64 "
     "(KB5033914)", [".net_framework", "windows_server_2019"], "WindowsServer2019", (2, 4)),
    ("5033912", "2024-01 Cumulative Update for .NET Framework 3.5, 4.8 and 4.8.1 for Microsoft server operating "
     "system version 21H2 for x64 (KB5033912)", [".net_framework", "windows_server_2022"], "WindowsServer2022", (2, 4)),
    ("5002537", "January 2024 Security Update for Microsoft Office 2016 (KB5002537)", ["office"], None, (1, 5)),
    ("5002519", "December 2023 Security Update for Microsoft Office 2016 (KB5002519)", ["office"], None, (1, 5)),
    ("5032679", "Security update for SQL Server 2019 CU22: January 9, 2024 (KB5032679)", ["sql_server"], None, (1, 3)),
]

# (short host name, osPlatform, rbac group, patch state). "unpatched" misses every applicable KB,
# "patched" misses none; the rest miss a seeded subset.
MACHINE_CATALOG = [
    ("ws-0001", "Windows11", "Workstations", "unpatched"),
    ("ws-0002", "Windows11", "Workstations", None),
    ("ws-0003", "Windows10", "Workstations", "unpatched"),
    ("ws-0004", "Windows10", "Workstations", None),
    ("ws-0005", "Windows11", "Workstations", None),
    ("ws-0006", "Windows11", "Workstations", "patched"),
    ("lt-0042", "Windows10", "Laptops", None),
    ("srv-dc01", "WindowsServer2019", "Domain Controllers", "unpatched"),
    ("srv-file01", "WindowsServer2019", "Servers", None),
    ("srv-sql01", "WindowsServer2022", "Servers", "unpatched"),
    ("srv-app01", "WindowsServer2022", "Servers", None),
    ("srv-web01", "WindowsServer2022", "Servers", None),
]
RBAC_GROUP_IDS = {"Workstations": 101, "Laptops": 102, "Servers": 201, "Domain Controllers": 202,
                  "Linux Servers": 203, "Unassigned": 0}
DOMAIN = "contoso.local"
THIRD_PARTY = ["notepad++", "git", "chrome", "firefox", "acrobat_reader_dc", "7-zip"]
EXTRA_VENDORS = ["contoso", "fabrikam", "adatum", "northwind", "tailspin", "woodgrove", "litware", "proseware"]
EXTRA_PRODUCTS = ["agent", "line_of_business_app", "reporting_client", "print_service", "vpn_client",
                  "backup_agent", "crm_desktop", "scanner_toolkit"]
INSTALLED_PROBABILITY = 0.3

# -- Entities the documentation names (fixed, the same for every seed) ------------------------------
# So that every example of the docs (modules, lookups, README, docs/docsite, roles, playbooks, demo)
# runs against the emulator. Added after every random draw (see Dataset._add_documented).

# Microsoft's example software ("Get software by ID": weaknesses, publicExploit, activeAlert and
# impactScore as documented; exposedMachines is computed from the relations as for all software).
DOCUMENTED_SOFTWARE = {"id": "microsoft-_-edge", "name": "edge", "vendor": "microsoft", "weaknesses": 467,
                       "publicExploit": True, "activeAlert": False, "impactScore": 2.39947438}
# Microsoft's example answer of "Get missing KBs by software ID" for microsoft-_-edge, exactly:
# GET /api/Software/microsoft-_-edge/getmissingkbs returns this one record. Its machineMissedOn
# (240) is FIXED to Microsoft's sample, the one count of the dataset not computed from the relations.
DOCUMENTED_KB = {"id": "4540673", "name": "March 2020 Security Updates", "productsNames": ["edge"],
                 "url": CATALOG_URL.format("4540673"), "machineMissedOn": 240, "cveAddressed": 14}
# (device id, computerDnsName, osPlatform, rbac group, software names, missing KBs). They miss none of
# the seeded KBs, so the seeded counts stay as computed.
DOCUMENTED_MACHINES = [
    # Microsoft's example device of "Get missing KBs by device ID", with Edge, missing KB4540673.
    ("2339ad14a01bd0299afb93dfa2550136057bff96", "ws-edge01.contoso.local", "Windows10", "Workstations",
     ["windows_10", "edge", "internet_explorer"], ["4540673"]),
    # The device id of software_info's machine_references sample; fully patched.
    ("7c7e1896fa39efb0a32a2cf421d837af1b9bf762", "ws-0007.contoso.local", "Windows11", "Workstations",
     ["windows_11", "edge_chromium-based", ".net_framework", "office"], []),
    # Two devices with the short name web01 (the kb_patching_plan filter's example, and the
    # troubleshooting guide's "The short name web01 matches several devices"); fully patched.
    ("6f0a2b8c3d4e5f60718293a4b5c6d7e8f9a0b1c2", "web01.contoso.local", "WindowsServer2022", "Servers",
     ["windows_server_2022", "edge_chromium-based", ".net_framework"], []),
    ("0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9d0", "web01.fabrikam.local", "WindowsServer2022", "Servers",
     ["windows_server_2022", "edge_chromium-based", ".net_framework"], []),
]

# -- Linux devices (fixed, the same for every seed; added after the documented entities) -----------
# The vulnerability export's Linux findings carry advisories (RHSA-..., USN-...) where Windows ones
# carry a KB; getmissingkbs answers [] for these devices and their software.
# (vendor, name, weaknesses, publicExploit, impactScore)
LINUX_SOFTWARE = [
    ("red_hat", "kernel", 182, True, 0.41277341),
    ("red_hat", "openssl", 12, False, 0.03318214),
    ("ubuntu", "openssl", 9, False, 0.02106657),
    ("ubuntu", "thunderbird-gnome-support_for_linux", 27, False, 0.01950462),
]
# (device id, computerDnsName (Linux sensors report the host name), distribution, software names)
LINUX_MACHINES = [
    ("a38e94d82cb61d22a844df64152b4447e791f297", "rhel-db01", "rhel", ["red_hat-_-kernel", "red_hat-_-openssl"]),
    ("b7106cf3a4aa24b81eb4cd68129269b3a8c7f8d9", "ubuntu-dev01", "ubuntu",
     ["ubuntu-_-openssl", "ubuntu-_-thunderbird-gnome-support_for_linux"]),
]

# -- Devices for the inventory plugin (fixed, the same for every seed; added after the Linux devices) ---
# What an inventory of GET /api/machines meets in a real tenant: tags that look like templates (an
# inventory must never render them), a device onboarded again (two ids, one computerDnsName, the old
# one Inactive and seen weeks ago; MicrosoftDocs issue 8316), a device without a computerDnsName, and
# the values of healthStatus, riskScore and exposureLevel the seeded devices may not draw. They have
# seeded software and miss seeded KBs, counted in every aggregate (machineMissedOn, exposedMachines,
# machineReferences) and in the export.
TEMPLATE_TAGS = ["{{ lookup('ansible.builtin.pipe', 'touch /tmp/defender-tvm-pwned') }}", "{{ 7 * 6 }}"]
DUPLICATE_NAME = "ws-dup01.contoso.local"
INVENTORY_MACHINES = [
    {"id": "5d41a0c7e3f9b2d8c6a4e1f07b3d9c2a8e6f4b1d", "computerDnsName": "lt-tags01.contoso.local",
     "osPlatform": "Windows10", "rbacGroupName": "Laptops", "machineTags": ["Prod", "Finance"] + TEMPLATE_TAGS,
     "lastSeen": datetime.timedelta(minutes=40), "firstSeen": datetime.timedelta(days=610),
     "healthStatus": "Active", "riskScore": "High", "exposureLevel": "High", "lastIpAddress": "10.10.5.21",
     "software": ["windows_10", "edge_chromium-based", ".net_framework", "internet_explorer", "office", "chrome"],
     "missing": ["5034122", "5034763", "5033909", "5002537"]},
    # Onboarded again: the current record ...
    {"id": "e1c37b5a9d2f4e6081a3c5d7f9b1e3a5c7d9f1b3", "computerDnsName": DUPLICATE_NAME,
     "osPlatform": "Windows11", "rbacGroupName": "Workstations", "machineTags": ["Prod"],
     "lastSeen": datetime.timedelta(hours=3), "firstSeen": datetime.timedelta(days=20),
     "healthStatus": "Active", "riskScore": "Medium", "exposureLevel": "Medium", "lastIpAddress": "10.10.5.31",
     "software": ["windows_11", "edge_chromium-based", ".net_framework", "office"], "missing": ["5034765"]},
    # ... and the old one, under another id, not seen since.
    {"id": "9b2e4d6f8a0c1e3b5d7f9a1c3e5b7d9f0a2c4e6b", "computerDnsName": DUPLICATE_NAME,
     "osPlatform": "Windows11", "rbacGroupName": "Workstations", "machineTags": ["Prod"],
     "lastSeen": datetime.timedelta(days=21, hours=5), "firstSeen": datetime.timedelta(days=540),
     "healthStatus": "Inactive", "riskScore": "Medium", "exposureLevel": "High", "lastIpAddress": "10.10.5.30",
     "software": ["windows_11", "edge_chromium-based", ".net_framework", "office"],
     "missing": ["5034123", "5034765", "5033920"]},
    # No computerDnsName (an inventory names it by its id).
    {"id": "c0ffee00d15ea5e0b16b00b5dead10ccfacade01", "computerDnsName": None,
     "osPlatform": "Windows10", "rbacGroupName": "Workstations", "machineTags": [],
     "lastSeen": datetime.timedelta(hours=9), "firstSeen": datetime.timedelta(days=75),
     "healthStatus": "ImpairedCommunication", "riskScore": "None", "exposureLevel": "Low",
     "lastIpAddress": "10.10.5.40", "software": ["windows_10", "edge_chromium-based", ".net_framework",
                                                 "internet_explorer"], "missing": ["5034763"]},
]


def software_id(vendor, name):
    """Defender software ids are ``{vendor}-_-{name}``."""
    return f"{vendor}-_-{name}"


def _timestamp(moment):
    """MDE's DateTimeOffset format: seven fractional digits and a Z."""
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond * 10:07d}Z"


class MachineTable(collections.abc.MutableMapping):
    """id -> Machine entity: the dataset's own dicts, then the fleet's, drawn on demand."""

    def __init__(self):
        self._own = {}
        self.fleet = None

    def __getitem__(self, mid):
        entity = self._own.get(mid)
        if entity is not None:
            return entity
        index = self.fleet.index.get(mid) if self.fleet is not None else None
        if index is None:
            raise KeyError(mid)
        return self.fleet.entity(index)

    def __setitem__(self, mid, entity):
        self._own[mid] = entity

    def __delitem__(self, mid):
        del self._own[mid]

    def __contains__(self, mid):
        return mid in self._own or (self.fleet is not None and mid in self.fleet.index)

    def __iter__(self):
        yield from self._own
        if self.fleet is not None:
            yield from self.fleet.ids

    def __len__(self):
        return len(self._own) + (len(self.fleet.ids) if self.fleet is not None else 0)

    def own(self):
        """The entities that are not the fleet's, in order."""
        return list(self._own.values())


class MachineSequence(collections.abc.Sequence):
    """The machine list (the dataset's own entities, then the fleet's), or a part of it: ``positions``
    in the whole list. A fleet's entities are drawn only when an item is asked for, so a slice or a
    filtered view holds positions, not entities (a page of 10,000 of 100,000 devices draws 10,000)."""

    def __init__(self, table, positions=None):
        self._own = table.own() if isinstance(table, MachineTable) else table[0]
        self._fleet = table.fleet if isinstance(table, MachineTable) else table[1]
        if positions is None:
            positions = range(len(self._own) + (self._fleet.count if self._fleet is not None else 0))
        self._positions = positions

    def __len__(self):
        return len(self._positions)

    def __getitem__(self, key):
        if isinstance(key, slice):
            return MachineSequence((self._own, self._fleet), self._positions[key])
        position = self._positions[key]   # a negative key and IndexError as a list has them
        if position < len(self._own):
            return self._own[position]
        return self._fleet.entity(position - len(self._own))

    def select(self, predicate):
        """The entities ``predicate`` keeps, in order, as a view: each entity is drawn once, and only
        its position is kept."""
        kept = array.array("L", (position for position, item in zip(self._positions, self) if predicate(item)))
        return MachineSequence((self._own, self._fleet), kept)


class Dataset:  # pylint: disable=too-many-instance-attributes
    """Entities plus relation indexes. Built once per emulator; read-only afterwards."""

    # Read by the fleet and the export (constants of this module, as attributes; ``snapshot`` per dataset).
    domain = DOMAIN
    os_details = OS_DETAILS
    os_software = OS_SOFTWARE
    rbac_group_ids = RBAC_GROUP_IDS
    timestamp = staticmethod(lambda moment: _timestamp(moment))  # pylint: disable=unnecessary-lambda

    def __init__(self, seed=0, extra_software=0, extra_machines=0, fleet=0, snapshot=SNAPSHOT):  # pylint: disable=too-many-arguments
        self.seed = seed
        # The instant the data is taken at: lastSeen and firstSeen are drawn as durations before it, so
        # another snapshot moves them and nothing else.
        self.snapshot = snapshot
        self.config = {"seed": seed, "extra_software": extra_software, "extra_machines": extra_machines, "fleet": fleet}
        self._rng = random.Random(seed)
        self.software = {}          # id -> Software entity (API shape)
        self.machines = MachineTable()  # id -> Machine entity (API shape); the fleet's drawn on demand
        self.kbs = {}               # kb id -> {"id", "name", "productsNames", "url", "cveAddressed", platform}
        self.machine_software = {}  # machine id -> [software id]
        self.machine_missing = {}   # machine id -> [kb id]
        self.linux_distribution = {}  # machine id -> "rhel" / "ubuntu"
        self._applicable_cache = {}
        self._build_software()
        self._build_machines(extra_machines)
        self._build_kbs()
        self._build_extra_software(extra_software)
        self._compute_missing()
        self._aggregate()
        self._add_documented()  # after every random draw: the seeded data does not depend on it
        self._add_linux()       # the same
        self._add_inventory()   # the same
        self.fleet = self._add_fleet(fleet) if fleet else None  # its own RNG per device
        # The missing KBs at the snapshot (the export's history is drawn from them); machine_missing is the
        # current state, which changes added at run time move (set_missing replaces a device's list).
        self.base_missing = dict(self.machine_missing)
        self._kb_order = {kb: index for index, kb in enumerate(self.kbs)}
        # GET /api/machines/{computerDnsName}: of several devices with that name (one onboarded again),
        # the one seen last; a device without a name is found by its id only.
        self.by_dns_name = {}
        for machine in sorted(self.machines.own(), key=lambda m: m["lastSeen"]):
            if machine["computerDnsName"]:
                self.by_dns_name[machine["computerDnsName"].lower()] = machine["id"]
        if self.fleet is not None:
            for name, mid in zip(self.fleet.names, self.fleet.ids):
                self.by_dns_name.setdefault(name.lower(), mid)

    # -- construction -------------------------------------------------------------------------

    def _build_software(self):
        for vendor, name, (low, high) in SOFTWARE_CATALOG:
            sid = software_id(vendor, name)
            self.software[sid] = {"id": sid, "name": name, "vendor": vendor,
                                  "weaknesses": self._rng.randint(low, high)}

    def _machine_id(self, name):
        return hashlib.sha1(f"{self.seed}:{name}".encode("utf-8")).hexdigest()  # nosec - an id, not security

    def _new_machine(self, index, host, platform, group):
        rng = self._rng
        mid = self._machine_id(host)
        version, build = OS_DETAILS[platform]
        last_seen = self.snapshot - datetime.timedelta(minutes=rng.randint(5, 60 * 20),
                                                       microseconds=rng.randint(0, 999999))
        first_seen = last_seen - datetime.timedelta(days=rng.randint(60, 700), seconds=rng.randint(0, 86399))
        server = platform.startswith("WindowsServer")
        ip = f"10.{20 if server else 10}.{index // 250}.{10 + index % 240}"
        self.machines[mid] = {
            "id": mid,
            "computerDnsName": f"{host}.{DOMAIN}",
            "firstSeen": _timestamp(first_seen),
            "lastSeen": _timestamp(last_seen),
            "osPlatform": platform,
            "version": version,
            "osProcessor": "x64",
            "osBuild": build,
            "osArchitecture": "64-bit",
            "lastIpAddress": ip,
            "lastExternalIpAddress": f"203.0.113.{1 + index % 254}",
            "healthStatus": "Inactive" if rng.random() < 0.08 else "Active",
            "onboardingStatus": "Onboarded",
            "deviceValue": "High" if server else "Normal",
            "rbacGroupName": group,
            "rbacGroupId": RBAC_GROUP_IDS.get(group, 300),
            "riskScore": rng.choice(["None", "Low", "Medium", "High"]),
            "exposureLevel": rng.choice(["Low", "Medium", "High"]),
            "isAadJoined": not server,
            "aadDeviceId": None if server else str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "machineTags": (["Server"] if server else []) + (["Pilot"] if rng.random() < 0.2 else []),
            "ipAddresses": [{"ipAddress": ip, "macAddress": f"{rng.getrandbits(48):012X}", "type": "Ethernet",
                             "operationalStatus": "Up"}],
        }
        return mid

    def _build_machines(self, extra_machines):
        self._patch_state = {}
        platforms = sorted(OS_SOFTWARE)
        catalog = list(MACHINE_CATALOG)
        for number in range(extra_machines):
            platform = self._rng.choice(platforms)
            server = platform.startswith("WindowsServer")
            host = f"{'srv' if server else 'ws'}-{1001 + number:04d}"
            catalog.append((host, platform, "Servers" if server else "Workstations", None))
        for index, (host, platform, group, state) in enumerate(catalog):
            mid = self._new_machine(index, host, platform, group)
            self._patch_state[mid] = state
            self.machine_software[mid] = self._software_for(host, platform)
        self._install_leftovers()

    def _install_leftovers(self):
        """Every catalog product must be installed somewhere, whatever the seed."""
        installed = {sid for sids in self.machine_software.values() for sid in sids}
        first = next(iter(self.machines))
        for sid, entity in self.software.items():
            if sid not in installed and entity["name"] not in OS_SOFTWARE.values():
                self.machine_software[first].append(sid)

    def _software_for(self, host, platform):
        rng = self._rng
        names = [OS_SOFTWARE[platform], "edge_chromium-based", ".net_framework"]
        if platform in ("Windows10", "WindowsServer2019"):
            names.append("internet_explorer")  # IE 11 still ships as a component there
        server = platform.startswith("WindowsServer")
        if not server:
            names.append("office")
        if host.startswith("srv-sql"):
            names.append("sql_server")
        for name in THIRD_PARTY:
            if rng.random() < (0.15 if server else 0.5):
                names.append(name)
        by_name = {s["name"]: sid for sid, s in self.software.items()}
        return [by_name[n] for n in names]

    def _build_kbs(self):
        for kb, name, products, platform, (low, high) in KB_CATALOG:
            self.kbs[kb] = {"id": kb, "name": name, "productsNames": list(products), "url": CATALOG_URL.format(kb),
                            "cveAddressed": self._rng.randint(low, high), "platform": platform}

    def _build_extra_software(self, count):
        """Synthetic line-of-business software for benchmarks, each with 1-5 KBs."""
        rng = self._rng
        machine_ids = list(self.machines)
        self._extra_missing = {}  # kb -> set of machine ids missing it
        next_kb = 5100001
        extra_kbs = []
        for number in range(count):
            vendor = EXTRA_VENDORS[number % len(EXTRA_VENDORS)]
            name = f"{EXTRA_PRODUCTS[(number // len(EXTRA_VENDORS)) % len(EXTRA_PRODUCTS)]}_{number + 1:05d}"
            sid = software_id(vendor, name)
            self.software[sid] = {"id": sid, "name": name, "vendor": vendor, "weaknesses": rng.randint(1, 40)}
            hosts = rng.sample(machine_ids, k=min(len(machine_ids), rng.randint(1, 3)))
            for mid in hosts:
                self.machine_software[mid].append(sid)
            for dummy in range(rng.randint(1, 5)):
                if extra_kbs and rng.random() < 0.1:
                    kb = rng.choice(extra_kbs)  # an update shipped for several products
                    if name not in self.kbs[kb]["productsNames"]:
                        self.kbs[kb]["productsNames"].append(name)
                else:
                    kb = str(next_kb)
                    next_kb += 1
                    extra_kbs.append(kb)
                    title = f"{vendor.capitalize()} {name.replace('_', ' ').title()}"
                    self.kbs[kb] = {"id": kb, "name": f"2024-01 Security Update for {title} (KB{kb})",
                                    "productsNames": [name], "url": CATALOG_URL.format(kb),
                                    "cveAddressed": rng.randint(1, 12), "platform": None, "extra": True}
                missing = [mid for mid in hosts if rng.random() < 0.8] or hosts[:1]
                self._extra_missing.setdefault(kb, set()).update(missing)

    def _compute_missing(self):
        """Per machine: the KBs of its software that apply to its OS, minus those it already installed."""
        rng = self._rng
        name_of = {sid: s["name"] for sid, s in self.software.items()}
        for mid, sids in self.machine_software.items():
            platform = self.machines[mid]["osPlatform"]
            names = {name_of[sid] for sid in sids}
            state = self._patch_state[mid]
            missing = []
            for kb, info in self.kbs.items():
                if info.get("extra"):
                    if mid in self._extra_missing.get(kb, ()):
                        missing.append(kb)
                    continue
                if info["platform"] not in (None, platform) or not names.intersection(info["productsNames"]):
                    continue
                if state == "patched" or (state is None and rng.random() < INSTALLED_PROBABILITY):
                    continue
                missing.append(kb)
            self.machine_missing[mid] = missing

    def _aggregate(self):
        rng = self._rng
        total = len(self.machines)
        self.software_machines = {sid: [] for sid in self.software}
        for mid, sids in self.machine_software.items():
            for sid in sids:
                self.software_machines[sid].append(mid)
        # software -> [(kb, machineMissedOn)]: machines that have this software and miss the KB.
        self.software_missing = {}
        for sid, entity in self.software.items():
            counts = {}
            for mid in self.software_machines[sid]:
                for kb in self.machine_missing[mid]:
                    if entity["name"] in self.kbs[kb]["productsNames"]:
                        counts[kb] = counts.get(kb, 0) + 1
            self.software_missing[sid] = [(kb, counts[kb]) for kb in self.kbs if kb in counts]
            exposed = len(self.software_machines[sid]) if entity["weaknesses"] else 0
            entity.update({
                "publicExploit": bool(entity["weaknesses"]) and rng.random() < 0.6,
                "activeAlert": bool(entity["weaknesses"]) and rng.random() < 0.1,
                "exposedMachines": exposed,
                "impactScore": round(rng.uniform(0.05, 12.0) * exposed / max(total, 1), 8) if exposed else 0.0,
            })

    def _add_documented(self):
        """The fixed entities of ``DOCUMENTED_*``; no random draw, so the seeded data stays as it is."""
        sid = DOCUMENTED_SOFTWARE["id"]
        self.software[sid] = {key: DOCUMENTED_SOFTWARE[key] for key in ("id", "name", "vendor", "weaknesses",
                                                                        "publicExploit", "activeAlert")}
        self.software[sid].update(exposedMachines=0, impactScore=DOCUMENTED_SOFTWARE["impactScore"])
        self.software_machines[sid] = []
        kb = DOCUMENTED_KB["id"]
        self.kbs[kb] = {"id": kb, "name": DOCUMENTED_KB["name"], "productsNames": list(DOCUMENTED_KB["productsNames"]),
                        "url": DOCUMENTED_KB["url"], "cveAddressed": DOCUMENTED_KB["cveAddressed"], "platform": None,
                        "documented": True}
        self.software_missing[sid] = [(kb, DOCUMENTED_KB["machineMissedOn"])]
        by_name = {s["name"]: s_id for s_id, s in self.software.items()}
        for index, (mid, fqdn, platform, group, names, missing) in enumerate(DOCUMENTED_MACHINES):
            version, build = OS_DETAILS[platform]
            server = platform.startswith("WindowsServer")
            last_seen = self.snapshot - datetime.timedelta(hours=2 + index)
            ip = f"10.{30 if server else 40}.0.{10 + index}"
            self.machines[mid] = {
                "id": mid, "computerDnsName": fqdn, "firstSeen": _timestamp(last_seen - datetime.timedelta(days=400)),
                "lastSeen": _timestamp(last_seen), "osPlatform": platform, "version": version, "osProcessor": "x64",
                "osBuild": build, "osArchitecture": "64-bit", "lastIpAddress": ip,
                "lastExternalIpAddress": f"198.51.100.{10 + index}", "healthStatus": "Active",
                "onboardingStatus": "Onboarded", "deviceValue": "High" if server else "Normal",
                "rbacGroupName": group, "rbacGroupId": RBAC_GROUP_IDS.get(group, 300), "riskScore": "Low",
                "exposureLevel": "Medium" if missing else "Low", "isAadJoined": not server,
                "aadDeviceId": None if server else str(uuid.uuid5(uuid.NAMESPACE_DNS, fqdn)),
                "machineTags": ["Server"] if server else [],
                "ipAddresses": [{"ipAddress": ip, "macAddress": mid[:12].upper(), "type": "Ethernet",
                                 "operationalStatus": "Up"}],
            }
            self._patch_state[mid] = "documented"
            self.machine_software[mid] = [by_name[name] for name in names]
            self.machine_missing[mid] = list(missing)
            for owned in self.machine_software[mid]:
                self.software_machines[owned].append(mid)
        for owned in {s for mid, *dummy in DOCUMENTED_MACHINES for s in self.machine_software[mid]}:
            entity = self.software[owned]
            entity["exposedMachines"] = len(self.software_machines[owned]) if entity["weaknesses"] else 0

    def _add_linux(self):
        """The fixed Linux devices and their software (``LINUX_*``); no random draw."""
        for vendor, name, weaknesses, exploit, impact in LINUX_SOFTWARE:
            sid = software_id(vendor, name)
            self.software[sid] = {"id": sid, "name": name, "vendor": vendor, "weaknesses": weaknesses,
                                  "publicExploit": exploit, "activeAlert": False, "exposedMachines": 0,
                                  "impactScore": impact}
            self.software_machines[sid] = []
            self.software_missing[sid] = []
        for index, (mid, host, distribution, sids) in enumerate(LINUX_MACHINES):
            last_seen = self.snapshot - datetime.timedelta(hours=1, minutes=7 * index)
            ip = f"10.60.0.{10 + index}"
            self.machines[mid] = {
                "id": mid, "computerDnsName": host, "firstSeen": _timestamp(last_seen - datetime.timedelta(days=300)),
                "lastSeen": _timestamp(last_seen), "osPlatform": "Linux", "version": "9.4" if distribution == "rhel"
                else "22.04", "osProcessor": "x64", "osBuild": None, "osArchitecture": "64-bit", "lastIpAddress": ip,
                "lastExternalIpAddress": f"198.51.100.{60 + index}", "healthStatus": "Active",
                "onboardingStatus": "Onboarded", "deviceValue": "Normal", "rbacGroupName": "Linux Servers",
                "rbacGroupId": RBAC_GROUP_IDS["Linux Servers"], "riskScore": "Medium", "exposureLevel": "Medium",
                "isAadJoined": False, "aadDeviceId": None, "machineTags": ["Linux"],
                "ipAddresses": [{"ipAddress": ip, "macAddress": mid[-12:].upper(), "type": "Ethernet",
                                 "operationalStatus": "Up"}],
            }
            self._patch_state[mid] = "linux"
            self.linux_distribution[mid] = distribution
            self.machine_software[mid] = list(sids)
            self.machine_missing[mid] = []
            for sid in sids:
                self.software_machines[sid].append(mid)
        for vendor, name, *dummy in LINUX_SOFTWARE:
            entity = self.software[software_id(vendor, name)]
            entity["exposedMachines"] = len(self.software_machines[entity["id"]])

    def _add_inventory(self):
        """The fixed devices of ``INVENTORY_MACHINES``, counted in the aggregates; no random draw."""
        by_name = {s["name"]: sid for sid, s in self.software.items()}
        counts = {}  # software id -> {kb: machines}
        for index, spec in enumerate(INVENTORY_MACHINES):
            mid, platform, group = spec["id"], spec["osPlatform"], spec["rbacGroupName"]
            version, build = OS_DETAILS[platform]
            last_seen = self.snapshot - spec["lastSeen"]
            server = platform.startswith("WindowsServer")
            self.machines[mid] = {
                "id": mid, "computerDnsName": spec["computerDnsName"],
                "firstSeen": _timestamp(self.snapshot - spec["firstSeen"]), "lastSeen": _timestamp(last_seen),
                "osPlatform": platform, "version": version, "osProcessor": "x64", "osBuild": build,
                "osArchitecture": "64-bit", "lastIpAddress": spec["lastIpAddress"],
                "lastExternalIpAddress": f"198.51.100.{80 + index}", "healthStatus": spec["healthStatus"],
                "onboardingStatus": "Onboarded", "deviceValue": "High" if "Finance" in spec["machineTags"] else "Normal",
                "rbacGroupName": group, "rbacGroupId": RBAC_GROUP_IDS.get(group, 300), "riskScore": spec["riskScore"],
                "exposureLevel": spec["exposureLevel"], "isAadJoined": not server,
                "aadDeviceId": None if server else str(uuid.uuid5(uuid.NAMESPACE_OID, mid)),
                "machineTags": list(spec["machineTags"]),
                "ipAddresses": [{"ipAddress": spec["lastIpAddress"], "macAddress": mid[-12:].upper(),
                                 "type": "Ethernet", "operationalStatus": "Up"}],
            }
            self._patch_state[mid] = "inventory"
            sids = [by_name[name] for name in spec["software"]]
            names = set(spec["software"])
            for kb in spec["missing"]:  # a KB it misses must apply to it (its platform and software)
                info = self.kbs[kb]
                if info["platform"] not in (None, platform) or not names.intersection(info["productsNames"]):
                    raise AssertionError(f"KB{kb} does not apply to {spec['computerDnsName'] or mid}")
            self.machine_software[mid] = sids
            self.machine_missing[mid] = list(spec["missing"])
            for sid in sids:
                self.software_machines[sid].append(mid)
                for kb in spec["missing"]:
                    if self.software[sid]["name"] in self.kbs[kb]["productsNames"]:
                        per_kb = counts.setdefault(sid, {})
                        per_kb[kb] = per_kb.get(kb, 0) + 1
        for sid, per_kb in counts.items():
            own = dict(self.software_missing[sid])
            self.software_missing[sid] = [(kb, own.get(kb, 0) + per_kb.get(kb, 0)) for kb in self.kbs
                                          if kb in own or kb in per_kb]
        for sid in {sid for spec in INVENTORY_MACHINES for sid in self.machine_software[spec["id"]]}:
            entity = self.software[sid]
            entity["exposedMachines"] = len(self.software_machines[sid]) if entity["weaknesses"] else 0

    def _applicable_kbs(self, platform, names):
        """The catalog KBs (not the synthetic or documented ones) that apply to a device."""
        key = (platform, frozenset(names))
        cached = self._applicable_cache.get(key)
        if cached is None:
            cached = self._applicable_cache[key] = [
                kb for kb, info in self.kbs.items() if not info.get("extra") and not info.get("documented")
                and info["platform"] in (None, platform) and key[1].intersection(info["productsNames"])]
        return cached

    def _add_fleet(self, count):
        """``count`` generated devices (fleet.py), counted in every aggregate like the others."""
        from .fleet import Fleet  # pylint: disable=import-outside-toplevel
        fleet = Fleet(self, count)
        by_name = {s["name"]: sid for sid, s in self.software.items()}
        name_of = {sid: s["name"] for sid, s in self.software.items()}
        counts = {}  # software id -> {kb: machines}
        for index in range(count):
            mid, sids, missing = fleet.draw(index, by_name, self._applicable_kbs)
            self.machine_software[mid] = sids
            self.machine_missing[mid] = missing
            self._patch_state[mid] = "fleet"
            if fleet.distributions.get(index):
                self.linux_distribution[mid] = fleet.distributions[index]
            for sid in sids:
                self.software_machines[sid].append(mid)
                if missing:
                    name = name_of[sid]
                    for kb in missing:
                        if name in self.kbs[kb]["productsNames"]:
                            per_kb = counts.setdefault(sid, {})
                            per_kb[kb] = per_kb.get(kb, 0) + 1
        for sid, per_kb in counts.items():
            own = dict(self.software_missing[sid])
            self.software_missing[sid] = [(kb, own.get(kb, 0) + per_kb.get(kb, 0)) for kb in self.kbs
                                          if kb in own or kb in per_kb]
        for sid, entity in self.software.items():
            if entity["weaknesses"] and sid != DOCUMENTED_SOFTWARE["id"]:
                entity["exposedMachines"] = len(self.software_machines[sid])
        self.machines.fleet = fleet
        return fleet

    def fleet_index(self, mid):
        """The fleet index of a device, or None for the dataset's own devices."""
        return self.fleet.index.get(mid) if self.fleet is not None else None

    def platform_of(self, mid):
        """osPlatform without drawing a fleet device's entity."""
        index = self.fleet_index(mid)
        return self.machines[mid]["osPlatform"] if index is None else self.fleet.platforms[index]

    def applicable_kbs(self, mid):
        """The KBs that apply to a device (its platform and software): those it misses and those it installed."""
        platform = self.platform_of(mid)
        names = {self.software[sid]["name"] for sid in self.machine_software[mid]}
        if self.fleet_index(mid) is not None:
            return self._applicable_kbs(platform, names)
        return [kb for kb, info in self.kbs.items()
                if info["platform"] in (None, platform) and names.intersection(info["productsNames"])]

    # -- changes at run time --------------------------------------------------------------------

    def set_missing(self, mid, kb, missing):
        """Make a device miss ``kb`` (``missing`` True) or not from now on: its getmissingkbs and the
        ``machineMissedOn`` of its software that the KB names (not the documented one, fixed to Microsoft's
        sample). The device's list is replaced, never changed in place (``base_missing`` shares it)."""
        current = self.machine_missing[mid]
        if (kb in current) == missing:
            return
        kbs = set(current) | {kb} if missing else set(current) - {kb}
        self.machine_missing[mid] = sorted(kbs, key=self._kb_order.__getitem__)
        names = self.kbs[kb]["productsNames"]
        for sid in self.machine_software[mid]:
            if self.software[sid]["name"] not in names or (sid, kb) == (DOCUMENTED_SOFTWARE["id"], DOCUMENTED_KB["id"]):
                continue
            counts = dict(self.software_missing[sid])
            counts[kb] = counts.get(kb, 0) + (1 if missing else -1)
            self.software_missing[sid] = [(k, counts[k]) for k in self.kbs if counts.get(k, 0) > 0]

    # -- API views ------------------------------------------------------------------------------

    def kb_entity(self, kb, machine_missed_on):
        """A PublicProductFixDto."""
        info = self.kbs[kb]
        return {"id": kb, "name": info["name"], "productsNames": list(info["productsNames"]), "url": info["url"],
                "machineMissedOn": machine_missed_on, "cveAddressed": info["cveAddressed"]}

    def software_kbs(self, sid):
        """getmissingkbs for a software id."""
        return [self.kb_entity(kb, count) for kb, count in self.software_missing[sid]]

    def machine_kbs(self, mid):
        """getmissingkbs for a machine id."""
        # Per-device answers report machineMissedOn 1, as in the docs example.
        return [self.kb_entity(kb, 1) for kb in self.machine_missing[mid]]

    def machine_reference(self, mid):
        """A MachineReference (machineReferences item)."""
        if self.fleet is not None and mid in self.fleet.index:
            return self.fleet.reference(self.fleet.index[mid])
        machine = self.machines[mid]
        return {key: machine[key] for key in ("id", "computerDnsName", "osPlatform", "rbacGroupName")}

    def software_list(self):
        """All Software entities in a stable order."""
        return list(self.software.values())

    def machine_list(self):
        """All Machine entities in a stable order (a lazy sequence with a fleet)."""
        return MachineSequence(self.machines) if self.fleet is not None else self.machines.own()

    def find_machine(self, key):
        """By 40-hex id (case-insensitive) or by computerDnsName (case-insensitive)."""
        if key.lower() in self.machines:
            return key.lower()
        return self.by_dns_name.get(key.lower())

    def to_dict(self):
        """The whole dataset with relations, for tests (``emu.data`` and ``GET /_emulator/data``)."""
        kb_machines = {kb: [] for kb in self.kbs}
        for mid, kbs in self.machine_missing.items():
            for kb in kbs:
                kb_machines[kb].append(mid)
        return copy.deepcopy({
            "software": {sid: dict(entity, missing_kbs=self.software_kbs(sid),
                                   machines=list(self.software_machines[sid]))
                         for sid, entity in self.software.items()},
            "machines": {mid: dict(entity, missing_kbs=self.machine_kbs(mid),
                                   software=list(self.machine_software[mid]))
                         for mid, entity in self.machines.items()},
            "kbs": {kb: {"id": kb, "name": info["name"], "productsNames": list(info["productsNames"]),
                         "url": info["url"], "cveAddressed": info["cveAddressed"],
                         "machines": kb_machines[kb]}
                    for kb, info in self.kbs.items()},
        })
