# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How a computer name or a device ID finds its Defender device.

FOR INTERNAL COLLECTION USE ONLY; the API may change in any release. One matching rule for the
device lookups of missing_kbs_info and for the kb_patching role's plan.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.defender.tvm.plugins.module_utils._errors import ResponseError

MACHINE_PERMISSION = 'Machine.Read.All'
DEVICE_ID_RE = re.compile(r'^[0-9a-fA-F]{40}$')


class DeviceNames:
    """Devices by lowercase DNS name, and by short name as well: matching many host names is then a
    dictionary lookup each, not a scan of every device per name. Built from a dict (name -> device)
    or from (name, device) pairs, where two devices may share a name (a device onboarded again)."""

    def __init__(self, devices):
        self.exact, self.short = {}, {}
        for dns_name, device in (devices.items() if isinstance(devices, dict) else devices):
            self.exact.setdefault(dns_name, []).append(device)
            self.short.setdefault(dns_name.split('.')[0], []).append(device)


def name_candidates(name, devices):
    """The devices whose DNS name is ``name``, case-insensitively, as an FQDN or a short name.

    ``devices`` maps lowercase DNS names to devices, or is a ``DeviceNames`` (to match many names,
    or names that several devices share). A short name matches a device's first label; an FQDN
    matches the device's full name (or a device Defender only knows by its short name). More than
    one candidate means the name is ambiguous.
    """
    index = devices if isinstance(devices, DeviceNames) else DeviceNames(devices)
    host = name.lower()
    if host in index.exact:
        return list(index.exact[host])
    short = host.split('.')[0]
    if '.' in host:
        return list(index.exact.get(short, []))
    return list(index.short.get(short, []))


def _described(device):
    name = device.get('computerDnsName') or device.get('computer_dns_name') or device.get('device_name')
    device_id = device.get('id') or device.get('device_id') or device.get('machine_id')
    return '%s (%s)' % (name, device_id) if name and device_id else (name or device_id)


def only_device(name, candidates):
    """The one candidate device for ``name``, None for none; several are an error naming them:
    guessing could patch or pass the wrong host."""
    if len(candidates) > 1:
        raise ResponseError("The name %s matches %d devices (%s); give the FQDN or the device ID"
                            % (name, len(candidates), ', '.join(sorted(_described(d) for d in candidates))))
    return candidates[0] if candidates else None


def list_devices(client, odata_filter=None):
    """Every device ``GET /api/machines`` lists (``odata_filter``: an OData ``$filter``, passed as
    given), paged to the end. Defender answers 404 when it has no device to list: an empty list."""
    params = {'$filter': odata_filter} if odata_filter else {}
    url = client.url('machines', **params)
    what = 'Listing devices' + (' (filter %s)' % odata_filter if odata_filter else '')
    return client.known(client.get_collection, url, what, MACHINE_PERMISSION, resource_id='the device list') or []
