# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The devices Defender knows (``GET /api/machines``), and how a computer name finds its device.

Internal to the collection; the API may change in any release.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.defender.tvm.plugins.module_utils.client import clean_ids
from ansible_collections.defender.tvm.plugins.module_utils.errors import NotFoundError, ResponseError

MACHINE_PERMISSION = 'Machine.Read.All'
DEVICE_ID_RE = re.compile(r'^[0-9a-fA-F]{40}$')
# GET /api/machines documents $top up to 10,000 and $skip.
PAGE_SIZE = 10000


def normalize_device(raw):
    return {
        'id': raw.get('id'),
        'computer_dns_name': raw.get('computerDnsName'),
        'os_platform': raw.get('osPlatform'),
        'os_version': raw.get('version'),
        'health_status': raw.get('healthStatus'),
        'onboarding_status': raw.get('onboardingStatus'),
        'last_seen': raw.get('lastSeen'),
        'rbac_group_id': raw.get('rbacGroupId'),
        'rbac_group_name': raw.get('rbacGroupName'),
        'machine_tags': list(raw.get('machineTags') or []),
    }


def name_candidates(name, devices):
    """The devices whose DNS name is ``name``, case-insensitively, as an FQDN or a short name.

    ``devices`` maps lowercase DNS names to devices. A short name matches a device's first
    label; an FQDN matches the device's full name (or a device Defender only knows by its
    short name). More than one candidate means the name is ambiguous.
    """
    host = name.lower()
    if host in devices:
        return [devices[host]]
    short = host.split('.')[0]
    if '.' in host:
        return [device for dns_name, device in devices.items() if dns_name == short]
    return [device for dns_name, device in devices.items() if dns_name.split('.')[0] == short]


def only_device(name, candidates):
    """The one candidate device for ``name``, None for none; several are an error naming them."""
    if len(candidates) > 1:
        raise ResponseError("The short name %s matches several devices (%s); give the FQDN"
                            % (name, ', '.join(sorted(d.get('computer_dns_name') or d.get('computerDnsName')
                                                      or d.get('id') for d in candidates))))
    return candidates[0] if candidates else None


def list_devices(client, names=None, page_size=PAGE_SIZE):
    """Every device Defender knows, or only those that ``names`` (device IDs or computer names) name.

    Returns ``devices`` (each once, in listing order) and ``not_found`` (the names no device has).
    The listing costs one call per 10,000 devices, whatever the number of names; a short name
    that matches several devices is an error naming them, not a guess.
    """
    wanted = clean_ids(names, 'devices') if names is not None else None
    try:
        listed = client.get_pages(('machines',), 'Listing the devices', MACHINE_PERMISSION, page_size)
    except NotFoundError:  # the API answers 404 when it has no device to list
        listed = []
    devices = [normalize_device(raw) for raw in listed if raw.get('id')]
    if wanted is None:
        return {'devices': devices, 'not_found': []}
    by_id = dict((d['id'].lower(), d) for d in devices)
    by_name = dict(((d['computer_dns_name'] or '').lower(), d) for d in devices if d['computer_dns_name'])
    kept, not_found = {}, []
    for name in wanted:
        if DEVICE_ID_RE.match(name):
            device = by_id.get(name.lower())
        else:
            device = only_device(name, name_candidates(name, by_name))
        if device:
            kept[device['id']] = device
        else:
            not_found.append(name)
    return {'devices': [d for d in devices if d['id'] in kept], 'not_found': not_found}
