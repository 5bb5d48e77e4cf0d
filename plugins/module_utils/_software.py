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


def inventory_filter(vendor=None, name=None, odata_filter=None, name_prefix=None):
    """The ``$filter`` of ``GET /api/Software``: the clauses of ``vendor``, ``name`` and
    ``name_prefix`` (which ``inventory_match`` checks again), and a caller's ``odata_filter`` as given."""
    clauses = []
    if vendor:
        clauses.append('vendor eq %s' % odata_string(vendor))
    if name:
        clauses.append('name eq %s' % odata_string(name))
    if name_prefix:
        clauses.append('startswith(name,%s)' % odata_string(name_prefix))
    if odata_filter:
        clauses.append('(%s)' % odata_filter)
    return ' and '.join(clauses) or None


def _lowered(raw, key):
    value = raw.get(key)
    return value.lower() if isinstance(value, str) else None


def inventory_match(raw, vendor=None, name=None, name_prefix=None):
    """Whether a listed software passes the clauses ``inventory_filter`` builds from the same
    arguments, compared ignoring case as Defender compares them.

    Defender documents ``$filter`` on the inventory, not how faithfully it applies it: a server
    that ignores it, or applies part of it, would otherwise add software that was not asked for
    (and, in ``windows_devices``, a call per software of the tenant). A caller's own OData
    ``odata_filter`` cannot be evaluated here and is left to the server.
    """
    return ((not vendor or _lowered(raw, 'vendor') == vendor.lower())
            and (not name or _lowered(raw, 'name') == name.lower())
            and (not name_prefix or (_lowered(raw, 'name') or '').startswith(name_prefix.lower())))


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


def list_inventory(client, vendor=None, name=None, odata_filter=None, name_prefix=None, page_size=PAGE_SIZE):
    """Every software matching the filter (see ``inventory_filter``), paging with $top/$skip until
    a short page; each checked against the clauses built here (``inventory_match``)."""
    items, seen = [], set()
    for raw in client.get_pages(('Software',), 'Listing the software inventory', SOFTWARE_PERMISSION, page_size,
                                **{'$filter': inventory_filter(vendor, name, odata_filter, name_prefix)}):
        if raw.get('id') in seen or not inventory_match(raw, vendor, name, name_prefix):
            continue
        seen.add(raw.get('id'))  # List Software can repeat an ID (known issue #11186)
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
WINDOWS = dict(vendor='microsoft', name_prefix='windows')


def windows_devices(client, references=None):
    """Machine references of every device that runs a Windows Defender knows: the inventory's
    Windows products (one listing) and a machineReferences call per Windows product, whatever the
    number of devices asked about or of software in the tenant.

    ``references`` maps software IDs to the machine references already read (a queried software
    that is itself a Windows product, such as microsoft-_-windows_11): those are not read again.
    """
    references = references or {}
    windows = [raw.get('id') for raw in list_inventory(client, **WINDOWS)]
    unread = [sid for sid in windows if sid not in references]
    read = dict(zip(unread, client.map(lambda sid: _machine_references(client, sid), unread)))
    return [ref for sid in windows for ref in (references[sid] if sid in references else read[sid])]


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
        software = [normalize_software(raw) for raw in list_inventory(client, vendor, name, odata_filter)]
    if machine_references:
        references = client.map(lambda entry: _machine_references(client, entry['id']), software)
        for entry, refs in zip(software, references):
            entry['machine_references'] = refs
    return {'software': software, 'not_found': not_found}
