# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which Defender device a name means, and which name a device gets: one rule for the whole collection.

FOR INTERNAL COLLECTION USE ONLY; the API may change in any release.

* ``DeviceIndex.resolve_all``: a device ID or a computer name (FQDN or short, any case) to its
  device. A name that several devices answer to (a device onboarded again keeps its name under a
  new ID; two domains with one short name) is an error naming every one of them and the way out
  that works for that case; it is never dropped, passed or guessed. Every strategy, module,
  reader and plugin matches names through it.
* ``find_named_devices``: the Machine entities that names may mean, listed from Defender with a
  filter and checked here (a filter the server ignores or half-applies changes nothing).
* ``host_names``: the inventory host name of each device (the inventory plugin's rule, which the
  event source follows so that an event names the host the inventory has).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.defender.tvm.plugins.module_utils._client import odata_string
from ansible_collections.defender.tvm.plugins.module_utils._errors import ResponseError

MACHINE_PERMISSION = 'Machine.Read.All'
DEVICE_ID_RE = re.compile(r'^[0-9a-fA-F]{40}$')
# How many names one listing's $filter asks for: its URL stays well under the 2,048 characters
# that proxies and gateways commonly accept.
_NAMES_PER_LISTING = 12
_SHOWN_CONFLICTS = 10
# The Machine fields an inventory host may be named by (the inventory plugin's hostnames option).
HOSTNAME_FIELDS = ('computerDnsName', 'id', 'lastIpAddress', 'lastExternalIpAddress', 'aadDeviceId')
DEFAULT_HOSTNAMES = ('computerDnsName', 'id')


def is_device_id(name):
    """Whether ``name`` is a Defender device ID (40 hexadecimal digits), not a computer name."""
    return bool(DEVICE_ID_RE.match(name))


class SharedNameError(ResponseError):
    """Names that several devices answer to. ``conflicts`` maps each such name to its devices as
    ``(device ID, DNS name, last seen)``."""

    def __init__(self, conflicts, id_hint='the device ID'):
        self.conflicts = conflicts
        shown = sorted(conflicts)[:_SHOWN_CONFLICTS]
        text = '; '.join(_conflict_text(name, conflicts[name], id_hint) for name in shown)
        more = len(conflicts) - len(shown)
        super(SharedNameError, self).__init__(
            '%s%s. Guessing could report on, pass or patch the wrong machine.'
            % (text, ' (and %d more name%s)' % (more, '' if more == 1 else 's') if more else ''))


def _conflict_text(name, devices, id_hint):
    described = ', '.join('%s (%s%s)' % (dns or '(no name)', device_id, ', last seen %s' % seen if seen else '')
                          for device_id, dns, seen in sorted(devices, key=lambda d: (d[1] or '', d[0])))
    full_names = set((dns or '').lower() for dummy, dns, dummy2 in devices)
    if len(full_names) == 1:
        # one FQDN for all of them: only the ID tells them apart
        way_out = 'give %s of the one you mean' % id_hint
    else:
        way_out = 'give the FQDN, or %s where devices share the FQDN' % id_hint
    return '%d devices answer to the name %s: %s; %s' % (len(devices), name, described, way_out)


class DeviceIndex:
    """Devices by ID, by lowercase DNS name and by first label, so that matching many names is a
    dictionary lookup each. Built from ``(device ID, DNS name, last seen, item)`` entries; the
    ``item`` (any shape) is what a match returns. An ID listed twice is one device."""

    def __init__(self, entries=()):
        self._by_id = {}
        self._exact = {}
        self._short = {}
        for entry in entries:
            self.add(*entry)

    def add(self, device_id, dns_name, last_seen, item):
        key = str(device_id).lower()
        if key in self._by_id:
            return
        record = (key, dns_name, last_seen, item)
        self._by_id[key] = record
        if dns_name:
            name = dns_name.lower()
            self._exact.setdefault(name, []).append(record)
            self._short.setdefault(name.split('.')[0], []).append(record)

    def __len__(self):
        return len(self._by_id)

    def _candidates(self, name):
        """The records a name may mean: a device ID exactly; a name that is a device's whole DNS
        name, the devices of that name; else an FQDN, the devices Defender knows by its short name
        alone, and a short name, every device whose first label it is."""
        text = name.strip().lower()
        if is_device_id(text):
            record = self._by_id.get(text)
            return [record] if record else []
        if text in self._exact:
            return self._exact[text]
        short = text.split('.')[0]
        if '.' in text:
            return self._exact.get(short, [])
        return self._short.get(short, [])

    def resolve_all(self, names, id_hint='the device ID'):
        """``{name: item or None}`` for every name (None: no device has it). Names that several
        devices answer to raise one SharedNameError naming all of them, before anything is used."""
        resolved, conflicts = {}, {}
        for name in names:
            if name in resolved or name in conflicts:
                continue
            candidates = self._candidates(name)
            if len(candidates) > 1:
                conflicts[name] = [(r[0], r[1], r[2]) for r in candidates]
            else:
                resolved[name] = candidates[0][3] if candidates else None
        if conflicts:
            raise SharedNameError(conflicts, id_hint)
        return resolved

    def resolve(self, name, id_hint='the device ID'):
        """The item of the one device ``name`` means, None when none; SharedNameError for several."""
        return self.resolve_all([name], id_hint)[name]


def machine_index(machines):
    """A DeviceIndex of Machine entities (``GET /api/machines``), each returning itself."""
    return DeviceIndex((m['id'], m.get('computerDnsName'), m.get('lastSeen'), m)
                       for m in machines if isinstance(m, dict) and m.get('id'))


def list_devices(client, odata_filter=None):
    """Every device ``GET /api/machines`` lists (``odata_filter``: an OData ``$filter``, passed as
    given), paged to the end. Defender answers 404 when it has no device to list: an empty list."""
    params = {'$filter': odata_filter} if odata_filter else {}
    url = client.url('machines', **params)
    what = 'Listing devices' + (' (filter %s)' % odata_filter if odata_filter else '')
    return client.known(client.get_collection, url, what, MACHINE_PERMISSION, resource_id='the device list') or []


def _name_clause(name):
    """A $filter for the devices a computer name may mean (DeviceIndex's rule, wider where OData
    cannot say it exactly); lowercase, as Defender keeps DNS names."""
    text = name.strip().lower()
    short = text.split('.')[0]
    if '.' in text:
        return 'computerDnsName eq %s or computerDnsName eq %s' % (odata_string(text), odata_string(short))
    return 'computerDnsName eq %s or startswith(computerDnsName,%s)' % (odata_string(text), odata_string(short + '.'))


def find_named_devices(client, names):
    """A DeviceIndex of the Machine entities that computer ``names`` may mean: one listing per few
    names (concurrent), each filtered by Defender and checked again by the index, so that a filter
    the server ignores costs data, never a wrong match. Device IDs need no listing."""
    wanted = sorted(set(n.strip().lower() for n in names if not is_device_id(n.strip())))
    chunks = [wanted[i:i + _NAMES_PER_LISTING] for i in range(0, len(wanted), _NAMES_PER_LISTING)]
    listed = client.map(lambda chunk: list_devices(client, ' or '.join('(%s)' % _name_clause(n) for n in chunk)),
                        chunks)
    return machine_index(machine for machines in listed for machine in machines)


def host_names(entries):
    """``(host name, item)`` per device as the inventory plugin names hosts, and the warnings.

    ``entries`` are ``(names, device ID, last seen, item)``: a device's host name is the first
    non-empty of its ``names`` (the plugin's ``hostnames`` fields, in order), else its ID. Of
    devices with one name, the one seen last (``lastSeen``, then the larger ID) keeps it and each
    other one is ``<name>_<device ID>``: one host per device, and the name goes to the device most
    likely to be the live one (an older one is usually the same machine before it was onboarded again).
    """
    named = {}
    for names, device_id, last_seen, item in entries:
        name = next((str(n) for n in names if n), str(device_id))
        named.setdefault(name, []).append((last_seen or '', str(device_id), item))
    result, warnings = [], []
    for name, group in named.items():
        group.sort(key=lambda d: (d[0], d[1]), reverse=True)
        result.append((name, group[0][2]))
        others = [('%s_%s' % (name, device_id), item) for dummy, device_id, item in group[1:]]
        result.extend(others)
        if others:
            warnings.append(
                '%d devices are named %s; the one seen last (%s) keeps the name, the others are %s. Name hosts by '
                'device ID (hostnames: [id]) with compose: {ansible_host: mde_computer_dns_name} to avoid this.'
                % (len(group), name, group[0][1], ', '.join(host for host, dummy in others)))
    return result, warnings
