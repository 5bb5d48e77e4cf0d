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
    """Lowercase DNS name -> device, indexed by short name as well: matching many host names is
    then a dictionary lookup each, not a scan of every device per name."""

    def __init__(self, devices):
        self.exact = devices
        self.short = {}
        for dns_name, device in devices.items():
            self.short.setdefault(dns_name.split('.')[0], []).append(device)


def name_candidates(name, devices):
    """The devices whose DNS name is ``name``, case-insensitively, as an FQDN or a short name.

    ``devices`` maps lowercase DNS names to devices (or is a ``DeviceNames`` of them, to match many
    names). A short name matches a device's first label; an FQDN matches the device's full name
    (or a device Defender only knows by its short name). More than one candidate means the name
    is ambiguous.
    """
    index = devices if isinstance(devices, DeviceNames) else DeviceNames(devices)
    host = name.lower()
    if host in index.exact:
        return [index.exact[host]]
    short = host.split('.')[0]
    if '.' in host:
        return [index.exact[short]] if short in index.exact else []
    return list(index.short.get(short, []))


def only_device(name, candidates):
    """The one candidate device for ``name``, None for none; several are an error naming them."""
    if len(candidates) > 1:
        raise ResponseError("The short name %s matches several devices (%s); give the FQDN"
                            % (name, ', '.join(sorted(d.get('computerDnsName') or d.get('computer_dns_name')
                                                      or d.get('device_name') or d.get('id') for d in candidates))))
    return candidates[0] if candidates else None
