# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Software inventory and the devices that have each software.

FOR INTERNAL COLLECTION USE ONLY; the API may change in any release.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.defender.tvm.plugins.module_utils._client import clean_ids, odata_string
from ansible_collections.defender.tvm.plugins.module_utils._missing_kbs import SOFTWARE_PERMISSION

# GET /api/Software documents $top up to 10,000 and $skip, and no @odata.nextLink.
PAGE_SIZE = 10000


def inventory_filter(vendor=None, name=None, odata_filter=None):
    clauses = []
    if vendor:
        clauses.append('vendor eq %s' % odata_string(vendor))
    if name:
        clauses.append('name eq %s' % odata_string(name))
    if odata_filter:
        clauses.append('(%s)' % odata_filter)
    return ' and '.join(clauses) or None


def normalize_software(raw):
    return {
        'id': raw.get('id'),
        'name': raw.get('name'),
        'vendor': raw.get('vendor'),
        'weaknesses': raw.get('weaknesses') or 0,
        'public_exploit': bool(raw.get('publicExploit')),
        'active_alert': bool(raw.get('activeAlert')),
        'exposed_machines': raw.get('exposedMachines') or 0,
        'impact_score': raw.get('impactScore') or 0.0,
    }


def normalize_machine_reference(raw):
    return {
        'id': raw.get('id'),
        'computer_dns_name': raw.get('computerDnsName'),
        'os_platform': raw.get('osPlatform'),
        'rbac_group_name': raw.get('rbacGroupName'),
    }


def list_inventory(client, odata_filter=None, page_size=PAGE_SIZE):
    """Every software matching the filter, paging with $top/$skip until a short page."""
    items, seen = [], set()
    for raw in client.get_pages(('Software',), 'Listing the software inventory', SOFTWARE_PERMISSION, page_size,
                                **{'$filter': odata_filter}):
        if raw.get('id') not in seen:  # List Software can repeat an ID (known issue #11186)
            seen.add(raw.get('id'))
            items.append(raw)
    return items


def _one_software(client, software_id):
    url = client.url('Software', ('software ID', software_id))
    return client.known(client.get, url, 'Getting software %s' % software_id, SOFTWARE_PERMISSION,
                        resource_id=software_id)


def _machine_references(client, software_id):
    url = client.url('Software', ('software ID', software_id), 'machineReferences')
    items = client.get_collection(url, 'Listing the devices that have %s' % software_id, SOFTWARE_PERMISSION,
                                  resource_id=software_id)
    return sorted((normalize_machine_reference(m) for m in items), key=lambda m: (m['computer_dns_name'] or '', m['id']))


# Every Windows device that Defender's vulnerability management assesses has its Windows in the
# software inventory (microsoft-_-windows_10, microsoft-_-windows_server_2022, ...), so the devices
# of these products are the Windows devices Defender knows.
WINDOWS = dict(vendor='microsoft', odata_filter="startswith(name,'windows')")


def windows_devices(client):
    """Machine references of every device that runs a Windows Defender knows: a call per Windows
    product (and one for the inventory), whatever the number of devices asked about."""
    windows = [entry['id'] for entry in query_software(client, **WINDOWS)['software']]
    if not windows:
        return []
    answer = query_software(client, software_ids=windows, machine_references=True, details=False)
    return [ref for entry in answer['software'] for ref in entry['machine_references']]


def query_software(client, software_ids=None, vendor=None, name=None, odata_filter=None, machine_references=False,
                   ignore_unknown=False, details=True):
    """Software entities (given IDs, or the filtered inventory), optionally with their devices.

    ``details=False`` with ``software_ids`` skips ``GET /api/Software/{id}``: each entry is then
    just the ID (and its devices), one call per software instead of two.
    """
    not_found = []
    if software_ids is not None and not details:
        ids = clean_ids(software_ids, 'software_ids')
        software = [{'id': sid} for sid in ids]
    elif software_ids is not None:
        answers, not_found = client.answers_by_id(lambda sid: _one_software(client, sid),
                                                  clean_ids(software_ids, 'software_ids'), 'software', ignore_unknown)
        software = [normalize_software(answer) for answer in answers if answer is not None]
    else:
        software = [normalize_software(raw) for raw in list_inventory(client, inventory_filter(vendor, name, odata_filter))]
    if machine_references:
        references = client.map(lambda entry: _machine_references(client, entry['id']), software)
        for entry, refs in zip(software, references):
            entry['machine_references'] = refs
    return {'software': software, 'not_found': not_found}
