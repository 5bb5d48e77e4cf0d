# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Missing KBs per software or per device: queries, normalisation, aggregation.

FOR INTERNAL COLLECTION USE ONLY; the API may change in any release. Used by the
``missing_kbs_info`` module and the ``missing_kbs`` lookup alike.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.defender.tvm.plugins.module_utils._client import clean_ids, odata_string
from ansible_collections.defender.tvm.plugins.module_utils._devices import (
    DEVICE_ID_RE, MACHINE_PERMISSION, DeviceNames, name_candidates, only_device)
from ansible_collections.defender.tvm.plugins.module_utils._errors import ResponseError

SOFTWARE_PERMISSION = 'Software.Read.All'
_KB_PREFIX_RE = re.compile(r'^\s*KB', re.IGNORECASE)


def kb_number(value):
    """``5034122`` from ``5034122``, ``kb5034122`` or `` KB5034122 ``."""
    return _KB_PREFIX_RE.sub('', str(value)).strip()


def normalize_kb(raw):
    """A PublicProductFixDto in Ansible's snake_case, with the ``KB`` form added.

    Defender gives the KB number without its prefix (``"4540673"``); ``win_updates`` matches
    ``KB<digits>``. Numbers may arrive as strings in other clients' experience, so coerce.
    """
    if not isinstance(raw, dict) or raw.get('id') in (None, ''):
        raise ResponseError("Defender returned a missing-KB record without an id: %r" % (raw,))
    kb_id = kb_number(raw['id'])
    return {
        'id': kb_id,
        'kb': 'KB' + kb_id,
        'name': raw.get('name'),
        'products_names': list(raw.get('productsNames') or []),
        'url': raw.get('url'),
        'machine_missed_on': _int(raw.get('machineMissedOn')),
        'cve_addressed': _int(raw.get('cveAddressed')),
    }


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def kb_rank(kb, name=None):
    """The sort key of the one KB order, everywhere (results, plans, reports): most CVEs addressed
    first; ties broken by reach, then by KB name or number so that the order is stable."""
    return (-(kb.get('cve_addressed') or 0), -(kb.get('machine_missed_on') or 0), name if name is not None else kb['id'])


def accept_pattern(kb):
    """A pattern for win_updates' accept_list that selects the update carrying exactly this KB.

    win_updates matches each pattern case-insensitively and unanchored against ONE string, the
    update's title followed by its KB IDs (``$matchList = ($updateInfo.title + $updateInfo.kb)`` in
    win_updates.ps1: a PowerShell string plus an array is a string, the array joined by spaces), e.g.
    ``2024-01 Cumulative Update ... (KB5034123)KB5034123``. So ``^KB5034123$`` would never match,
    a bare ``KB503412`` would also select KB5034123, and a title that merely mentions a KB would
    select the wrong update. The KB IDs come last: match the KB followed only by other KB IDs up
    to the end. (Should win_updates ever match the title and each KB separately, the same pattern
    still selects exactly this KB.)
    """
    return r'%s(?:\s+KB\d+)*$' % re.escape(kb['kb'])


def _fetch_kbs(client, url, what, resource_id):
    """The missing KBs at ``url``, most important first; None when Defender does not know the ID."""
    items = client.known(client.get_collection, url, what, SOFTWARE_PERMISSION, resource_id=resource_id)
    return None if items is None else sorted((normalize_kb(item) for item in items), key=kb_rank)


def _software_query(client, software_id):
    url = client.url('Software', ('software ID', software_id), 'getmissingkbs')
    kbs = _fetch_kbs(client, url, "Getting the missing KBs of software %s" % software_id, software_id)
    return None if kbs is None else {'software_id': software_id, 'missing_kbs': kbs}


def resolve_device(client, name):
    """``(device ID, computer DNS name)`` for a computer name, FQDN or short; None if unknown.

    ``GET /api/machines/{name}`` takes the name Defender knows, usually the FQDN. A short name
    falls back to listing the devices whose name starts with ``<name>.``; both need
    Machine.Read.All. Two devices with that short name are an error, not a guess.
    """
    machine = client.known(client.get, client.url('machines', ('machine name', name)), "Resolving device %s" % name,
                           MACHINE_PERMISSION, resource_id=name)
    if machine is None and '.' not in name:
        url = client.url('machines', **{'$filter': 'startswith(computerDnsName,%s)' % odata_string(name + '.')})
        # the API answers 404 when it has no device to list
        listed = client.known(client.get_collection, url, "Looking up device %s by short name" % name,
                              MACHINE_PERMISSION, resource_id=name) or []
        # name_candidates checks each listed device's name: a server that ignores or half-applies
        # the filter (listing more devices) gives the same answer
        machine = only_device(name, name_candidates(name, DeviceNames(
            (m['computerDnsName'].lower(), m) for m in listed if m.get('computerDnsName'))))
    if machine is None:
        return None
    if not isinstance(machine, dict) or not machine.get('id'):
        raise ResponseError("Defender returned no device ID for %s" % name)
    return machine['id'], machine.get('computerDnsName')


def _machine_query(client, requested):
    """Missing KBs of one device, given its Defender device ID or its computer name."""
    computer_dns_name = None
    device_id = requested
    if not DEVICE_ID_RE.match(requested):
        device = resolve_device(client, requested)
        if device is None:
            return None
        device_id, computer_dns_name = device
    url = client.url('machines', ('device ID', device_id), 'getmissingkbs')
    kbs = _fetch_kbs(client, url, "Getting the missing KBs of device %s" % requested, requested)
    if kbs is None:
        return None
    return {'machine_id': device_id, 'computer_dns_name': computer_dns_name, 'requested': requested,
            'missing_kbs': kbs}


def _aggregate(results, owner_key, owner_field, count_owners):
    """Each KB once across all queried IDs, with the IDs that reported it."""
    merged = {}
    for entry in results:
        for kb in entry['missing_kbs']:
            current = merged.get(kb['id'])
            if current is None:
                current = dict(kb, products_names=list(kb['products_names']))
                current[owner_key] = []
                merged[kb['id']] = current
            else:
                current['cve_addressed'] = max(current['cve_addressed'], kb['cve_addressed'])
                current['machine_missed_on'] = max(current['machine_missed_on'], kb['machine_missed_on'])
                current['name'] = current['name'] or kb['name']
                current['url'] = current['url'] or kb['url']
                current['products_names'].extend(p for p in kb['products_names'] if p not in current['products_names'])
            if entry[owner_field] not in current[owner_key]:
                current[owner_key].append(entry[owner_field])
    kbs = list(merged.values())
    if count_owners:
        # Per-device answers say 1 each; across the queried devices the useful figure is how many miss it.
        for kb in kbs:
            kb['machine_missed_on'] = len(kb[owner_key])
    return sorted(kbs, key=kb_rank)


def query_missing_kbs(client, software_ids=None, machine_ids=None, ignore_unknown=False):
    """Query every ID concurrently; return ``results``, ``missing_kbs``, ``accept_list``, ``not_found``.

    Unknown IDs fail the call (naming all of them) unless ``ignore_unknown``; then they are
    listed in ``not_found``. All IDs are validated before the first request.
    """
    if software_ids is not None:
        answers, not_found = client.answers_by_id(lambda sid: _software_query(client, sid),
                                                  clean_ids(software_ids, 'software_ids'), 'software', ignore_unknown)
        owner_key, owner_field, count_owners = 'software_ids', 'software_id', False
    else:
        answers, not_found = client.answers_by_id(lambda mid: _machine_query(client, mid),
                                                  clean_ids(machine_ids, 'machine_ids'), 'device', ignore_unknown)
        owner_key, owner_field, count_owners = 'machine_ids', 'machine_id', True
    results = [answer for answer in answers if answer is not None]
    missing = _aggregate(results, owner_key, owner_field, count_owners)
    return {
        'results': results,
        'missing_kbs': missing,
        'accept_list': [accept_pattern(kb) for kb in missing],
        'not_found': not_found,
    }
