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

from ansible_collections.defender.tvm.plugins.module_utils._client import clean_ids
from ansible_collections.defender.tvm.plugins.module_utils._devices import find_named_devices, is_device_id
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


def _machine_query(client, requested, machine):
    """Missing KBs of one device: ``requested`` is its Defender device ID, or a computer name that
    ``machine`` (the Machine entity it resolved to, None for none) stands for."""
    if is_device_id(requested):
        device_id, computer_dns_name = requested, None
    elif machine is None:
        return None
    else:
        device_id, computer_dns_name = machine['id'], machine.get('computerDnsName')
    url = client.url('machines', ('device ID', device_id), 'getmissingkbs')
    kbs = _fetch_kbs(client, url, "Getting the missing KBs of device %s" % requested, requested)
    if kbs is None:
        return None
    return {'machine_id': device_id, 'computer_dns_name': computer_dns_name, 'requested': requested,
            'missing_kbs': kbs}


def _aggregate(results, owner_key, owner_field, count_owners):
    """Each KB once across all queried IDs, with the IDs that reported it (each once, in order)."""
    merged, owners = {}, {}
    for entry in results:
        for kb in entry['missing_kbs']:
            current = merged.get(kb['id'])
            if current is None:
                current = dict(kb, products_names=list(kb['products_names']))
                current[owner_key] = []
                merged[kb['id']] = current
                owners[kb['id']] = set()
            else:
                current['cve_addressed'] = max(current['cve_addressed'], kb['cve_addressed'])
                current['machine_missed_on'] = max(current['machine_missed_on'], kb['machine_missed_on'])
                current['name'] = current['name'] or kb['name']
                current['url'] = current['url'] or kb['url']
                # a KB's products are a handful: a list scan stays cheap
                current['products_names'].extend(p for p in kb['products_names'] if p not in current['products_names'])
            # a KB's owners can be every device queried: a set, not a scan of the list per device
            if entry[owner_field] not in owners[kb['id']]:
                owners[kb['id']].add(entry[owner_field])
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
        ids = clean_ids(machine_ids, 'machine_ids')
        # computer names to devices first, all at once (a name two devices share fails here)
        machines = find_named_devices(client, ids).resolve_all([i for i in ids if not is_device_id(i)])
        answers, not_found = client.answers_by_id(lambda mid: _machine_query(client, mid, machines.get(mid)),
                                                  ids, 'device', ignore_unknown)
        owner_key, owner_field, count_owners = 'machine_ids', 'machine_id', True
    results = [answer for answer in answers if answer is not None]
    missing = _aggregate(results, owner_key, owner_field, count_owners)
    return {
        'results': results,
        'missing_kbs': missing,
        'accept_list': [accept_pattern(kb) for kb in missing],
        'not_found': not_found,
    }
