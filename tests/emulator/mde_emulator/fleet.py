"""A generated fleet of any size (``Emulator(..., fleet=N)``): devices drawn per index, lazily.

Each device is drawn from its own RNG (seed and index), after every draw of the seeded dataset, so
the seeded data is the same with or without a fleet, and device ``i`` is the same whatever the
fleet's size. Only what the aggregates need (id, name, platform, group, software and missing KBs) is
kept per device; the Machine entity is drawn again from the index when asked for, so a fleet of
100,000 devices costs tens of megabytes, not a dict of 25 keys per device.
"""

import datetime
import hashlib
import random
import uuid

# osPlatform -> share of the fleet (cumulative draw in this order). Linux devices are "Linux" in
# /api/machines (their distribution is in the export's osVersion).
PLATFORM_SHARES = (("Windows10", 0.36), ("Windows11", 0.34), ("WindowsServer2019", 0.10),
                   ("WindowsServer2022", 0.12), ("rhel", 0.04), ("ubuntu", 0.04))
LINUX = {
    # distribution: (version in /api/machines, export osVersion, software (vendor, name))
    "rhel": ("9.4", "enterprise_linux_9.4", (("red_hat", "kernel"), ("red_hat", "openssl"))),
    "ubuntu": ("22.04", "ubuntu_linux_22.04", (("ubuntu", "openssl"), ("ubuntu", "thunderbird-gnome-support_for_linux"))),
}
LINUX_GROUP = "Linux Servers"
THIRD_PARTY_SHARE = {"notepad++": 0.3, "git": 0.25, "chrome": 0.55, "firefox": 0.3, "acrobat_reader_dc": 0.4,
                     "7-zip": 0.35}


def device_id(seed, index):
    """The 40-hex id of fleet device ``index``."""
    return hashlib.sha1(f"{seed}:fleet:{index}".encode("utf-8")).hexdigest()  # nosec - an id, not security


class Fleet:  # pylint: disable=too-many-instance-attributes
    """The generated devices: compact per-device facts, entities on demand."""

    def __init__(self, dataset, count):
        self.seed = dataset.seed
        self.count = count
        self.ids = []
        self.index = {}
        self.names = []
        self.platforms = []     # osPlatform ("Linux" for both distributions)
        self.distributions = {}  # index -> "rhel" / "ubuntu" for Linux devices
        self.groups = []
        self._group_ids = dataset.rbac_group_ids
        self._os_details = dataset.os_details
        self._os_software = dataset.os_software
        self._timestamp = dataset.timestamp
        self._snapshot = dataset.snapshot
        self._domain = dataset.domain

    # -- drawing --------------------------------------------------------------------------------

    def draw(self, index, software_by_name, applicable):
        """Draw device ``index``: (id, software ids, missing KBs). ``applicable(platform, names)`` gives
        the KBs that apply to a device with those software names."""
        rng = random.Random(f"{self.seed}:fleet-core:{index}")
        pick, platform = rng.random(), PLATFORM_SHARES[-1][0]
        for name, share in PLATFORM_SHARES:
            if pick < share:
                platform = name
                break
            pick -= share
        mid = device_id(self.seed, index)
        if platform in LINUX:
            self.distributions[index] = platform
            names = [f"{vendor}-_-{name}" for vendor, name in LINUX[platform][2]]
            if platform == "ubuntu" and rng.random() < 0.5:
                names = names[:1]
            host = f"{'rhel' if platform == 'rhel' else 'ubuntu'}-f{index + 1:06d}"
            platform, group, sids, missing = "Linux", LINUX_GROUP, names, []
        else:
            server = platform.startswith("WindowsServer")
            if server:
                group = "Domain Controllers" if rng.random() < 0.05 else "Servers"
                host = f"{'dc' if group == 'Domain Controllers' else 'srv'}-f{index + 1:06d}.{self._domain}"
            else:
                group = "Laptops" if rng.random() < 0.3 else "Workstations"
                host = f"{'lt' if group == 'Laptops' else 'ws'}-f{index + 1:06d}.{self._domain}"
            names = [self._os_software[platform], "edge_chromium-based", ".net_framework"]
            if platform in ("Windows10", "WindowsServer2019"):
                names.append("internet_explorer")
            if not server:
                names.append("office")
            elif rng.random() < 0.06:
                names.append("sql_server")
            for name, share in THIRD_PARTY_SHARE.items():
                if rng.random() < (share / 3 if server else share):
                    names.append(name)
            sids = [software_by_name[n] for n in names]
            patched = rng.random() < 0.1
            missing = [] if patched else [kb for kb in applicable(platform, names) if rng.random() >= 0.3]
        self.index[mid] = index
        self.ids.append(mid)
        self.names.append(host)
        self.platforms.append(platform)
        self.groups.append(group)
        return mid, sids, missing

    # -- views ----------------------------------------------------------------------------------

    def reference(self, index):
        """A MachineReference without drawing the whole entity."""
        return {"id": self.ids[index], "computerDnsName": self.names[index], "osPlatform": self.platforms[index],
                "rbacGroupName": self.groups[index]}

    def entity(self, index):
        """The Machine entity of device ``index`` (drawn again each time, from its own RNG)."""
        rng = random.Random(f"{self.seed}:fleet-entity:{index}")
        platform = self.platforms[index]
        distribution = self.distributions.get(index)
        if distribution:
            version, build, server = LINUX[distribution][0], None, True
        else:
            version, build = self._os_details[platform]
            server = platform.startswith("WindowsServer")
        last_seen = self._snapshot - datetime.timedelta(minutes=rng.randint(5, 60 * 20),
                                                        microseconds=rng.randint(0, 999999))
        first_seen = last_seen - datetime.timedelta(days=rng.randint(30, 900), seconds=rng.randint(0, 86399))
        ip = f"10.{100 + index // 62500}.{(index // 250) % 250}.{10 + index % 240}"
        group = self.groups[index]
        windows_client = not server and not distribution
        return {
            "id": self.ids[index],
            "computerDnsName": self.names[index],
            "firstSeen": self._timestamp(first_seen),
            "lastSeen": self._timestamp(last_seen),
            "osPlatform": platform,
            "version": version,
            "osProcessor": "x64",
            "osBuild": build,
            "osArchitecture": "64-bit",
            "lastIpAddress": ip,
            "lastExternalIpAddress": f"203.0.113.{1 + index % 254}",
            "healthStatus": "Inactive" if rng.random() < 0.06 else "Active",
            "onboardingStatus": "Onboarded",
            "deviceValue": "High" if server else "Normal",
            "rbacGroupName": group,
            "rbacGroupId": self._group_ids.get(group, 300),
            "riskScore": rng.choice(["None", "Low", "Medium", "High"]),
            "exposureLevel": rng.choice(["Low", "Medium", "High"]),
            "isAadJoined": windows_client,
            "aadDeviceId": str(uuid.UUID(int=rng.getrandbits(128), version=4)) if windows_client else None,
            "machineTags": ["Fleet"] + (["Linux"] if distribution else ["Server"] if server else []),
            "ipAddresses": [{"ipAddress": ip, "macAddress": f"{rng.getrandbits(48):012X}", "type": "Ethernet",
                             "operationalStatus": "Up"}],
        }
