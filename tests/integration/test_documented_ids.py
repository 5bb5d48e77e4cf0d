# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every software ID, device ID and device name the docs use exists in the emulator's data.

So an example pasted from the plugins' docs, the README, the docs site, the role, the playbooks or
the demo runs against the emulator. IDs used on purpose as unknown must stay unknown.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible_collections.defender.tvm.tests.integration.harness import COLLECTION_ROOT

SCANNED = ['plugins', 'README.md', os.path.join('docs', 'docsite'), 'roles', 'playbooks', 'demo']
TEXT = ('.py', '.yml', '.yaml', '.md', '.rst', '.j2', '.txt', '.json', '.cfg', '.ini', '.sh')

SOFTWARE_ID = re.compile(r'[A-Za-z0-9_+.-]*[A-Za-z0-9_+]-_-[A-Za-z0-9_+.-]*[A-Za-z0-9_+]')
DEVICE_NAME = re.compile(r'\b[A-Za-z0-9-]+\.(?:contoso|fabrikam)\.local\b')
DEVICE_ID = re.compile(r'(?<![0-9A-Fa-f])[0-9a-f]{40}(?![0-9A-Fa-f])')

# Used in the docs as IDs Defender does not know (troubleshooting's "Defender does not know ..."),
# or as the pattern of an ID: they must NOT exist.
UNKNOWN_ON_PURPOSE = {'microsoft-_-nope', 'contoso-_-x', 'vendor-_-product'}


def documented(pattern):
    found = {}
    for top in SCANNED:
        path = os.path.join(COLLECTION_ROOT, top)
        files = [path] if os.path.isfile(path) else [os.path.join(d, f) for d, dummy, fs in os.walk(path) for f in fs]
        for name in files:
            if not name.endswith(TEXT):
                continue
            with open(name, encoding='utf-8') as handle:
                for match in pattern.findall(handle.read()):
                    found.setdefault(match, set()).add(os.path.relpath(name, COLLECTION_ROOT))
    return found


def test_the_scan_finds_the_documented_examples():
    # the scan itself works: Microsoft's example IDs are in the docs
    assert 'microsoft-_-edge' in documented(SOFTWARE_ID)
    assert '2339ad14a01bd0299afb93dfa2550136057bff96' in documented(DEVICE_ID)
    assert 'srv-sql01.contoso.local' in documented(DEVICE_NAME)


def test_documented_software_ids_exist(emulator):
    software = emulator.data['software']
    ids = documented(SOFTWARE_ID)
    missing = dict((i, sorted(where)) for i, where in ids.items() if i not in software and i not in UNKNOWN_ON_PURPOSE)
    assert not missing, 'software IDs in the docs that the emulator does not know: %s' % missing
    assert not UNKNOWN_ON_PURPOSE & set(software)


def test_documented_devices_exist(emulator):
    machines = emulator.data['machines']
    names = set(m['computerDnsName'] for m in machines.values())
    missing = dict((n, sorted(w)) for n, w in documented(DEVICE_NAME).items() if n.lower() not in names)
    missing.update((i, sorted(w)) for i, w in documented(DEVICE_ID).items() if i not in machines)
    assert not missing, 'devices in the docs that the emulator does not know: %s' % missing
