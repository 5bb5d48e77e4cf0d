# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""defender.tvm.missing_kbs: an ansible-rulebook event source that fires when devices start
missing KBs, from Defender's vulnerability changes (the export's delta)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import asyncio
import datetime
import hashlib
import json
import logging
import os
import sys
import tempfile

DOCUMENTATION = r'''
---
short_description: Fire an event when Microsoft Defender for Endpoint sees a device start missing KBs
description:
  - Polls Defender's vulnerability changes (C(GET /api/machines/SoftwareVulnerabilityChangesByMachine),
    the delta of the vulnerability export, refreshed about every six hours) and emits one event per
    device whose set of missing KBs grew, with the KBs that became missing and those that were fixed.
  - Device-group (RBAC) moves, which show up as a Fixed and a New of the same finding, cancel out
    and fire nothing; a KB that was fixed fires nothing either.
  - No duplicates across restarts. After each poll the source writes a checkpoint atomically (the
    time it reached and the KBs it already emitted inside the overlap it reads again), and a
    restart resumes from it. A poll that fails (throttling, network, server errors after the
    client's retries) emits nothing, keeps the checkpoint, logs a warning, and the source polls
    again after O(interval); it never exits on such an error.
  - Uses the collection's shared client (the options, authentication, pacing, retries and reader of
    M(defender.tvm.device_missing_kbs_info)); blocking calls run off the event loop.
  - Requires the application permission C(Vulnerability.Read.All) of the C(WindowsDefenderATP) API,
    and C(Machine.Read.All) to name hosts by computer name (the default O(hostnames)).
options:
  interval:
    description: Seconds between polls.
    type: int
    default: 3600
  state_file:
    description:
      - Where the checkpoint lives. Default, a file named after the tenant, the app and the API in
        C($XDG_STATE_HOME/defender_tvm/) (C(~/.local/state/defender_tvm/)). Keep it on persistent
        storage; two sources must not share one.
    type: path
  since:
    description:
      - Where the first poll starts when there is no checkpoint yet (ISO 8601, such as
        V(2024-02-19T00:00:00Z)); at most 14 days back (Defender's limit). Default six hours back.
    type: str
  min_cve_addressed:
    description: Only KBs that fix at least this many of the device's newly missing findings count.
    type: int
    default: 1
  devices:
    description:
      - Only these devices (Defender device IDs or computer names, FQDN or short, any case), as in
        M(defender.tvm.device_missing_kbs_info). Default every device.
    type: list
    elements: str
  hostnames:
    description:
      - How the inventory names hosts, to name the event's host (C(meta.hosts)) exactly as the
        M(defender.tvm.devices) inventory plugin does - give the same value as its O(hostnames)
        option. With the default, a device's name is its computer name, and of two devices with one
        name (a device onboarded again) the one seen last keeps it and the other is
        C(<name>_<device ID>); knowing which needs the device list (C(GET /api/machines), one call
        per 10,000 devices in a poll that has events; C(Machine.Read.All)). With V(id) first, no list is read.
    type: list
    elements: str
    choices: [computerDnsName, id, lastIpAddress, lastExternalIpAddress, aadDeviceId]
    default: [computerDnsName, id]
  filter:
    description:
      - The inventory plugin's O(filter) (an OData C($filter) for the device list), when its
        inventory has one, since which devices share a name depends on which devices are listed.
    type: str
  tenant_id:
    description: The connection options of the collection's modules (same names, same environment
      variables E(MDE_*) and E(AZURE_*)); see M(defender.tvm.device_missing_kbs_info).
    type: str
notes:
  - The event is C({"defender_tvm" - {"device_id", "device_name", "new_kbs" - [{"id", "kb", "cve_addressed"}],
    "fixed_kbs" - [...], "generated_time"}, "meta" - {"hosts" - "<inventory host name>"}}) (C(-) standing for a
    colon), C(generated_time) being when Defender recorded the device's last change. C(meta.hosts)
    limits a rule's action to that host, named as the M(defender.tvm.devices) inventory plugin names
    the device (see O(hostnames)), so that a rule patches that device and no other one.
  - Secrets are never logged; give them in environment variables (E(MDE_CLIENT_SECRET), ...) rather
    than in the rulebook.
'''

EXAMPLES = r'''
- name: Patch the devices that start missing KBs
  hosts: all
  sources:
    - defender.tvm.missing_kbs:
        interval: 3600
        min_cve_addressed: 1
        state_file: /var/lib/eda/defender_tvm_missing_kbs.json
  rules:
    - name: Install a device's new KBs
      condition: event.defender_tvm.new_kbs is defined
      action:
        run_playbook:
          name: defender.tvm.patch
          extra_vars:
            kb_patching_strategy: export
'''


def _import_collection():
    """The collection's shared code. ansible-rulebook loads this file with runpy and puts nothing
    on sys.path, so the directory holding ``ansible_collections`` is found from this file's own
    path (abspath, not realpath: an installed collection may be a symlink)."""
    try:
        from ansible_collections.defender.tvm.plugins.module_utils import _export  # noqa: F401 pylint: disable=unused-import
    except ImportError:
        path = os.path.abspath(__file__)
        while os.path.basename(path) != 'ansible_collections':
            parent = os.path.dirname(path)
            if parent == path:
                raise
            path = parent
        sys.path.insert(0, os.path.dirname(path))


_import_collection()

# pylint: disable=wrong-import-position
from ansible_collections.defender.tvm.plugins.module_utils._client import DefenderClient, clean_ids
from ansible_collections.defender.tvm.plugins.module_utils._devices import DEFAULT_HOSTNAMES, HOSTNAME_FIELDS, host_names, list_devices
from ansible_collections.defender.tvm.plugins.module_utils._errors import ConfigurationError, DefenderError
from ansible_collections.defender.tvm.plugins.module_utils._export import MAX_DELTA_DAYS, parse_time, read_changes
from ansible_collections.defender.tvm.plugins.module_utils._options import OPTIONS, OptionAdapter, Settings

LOG = logging.getLogger('defender.tvm.missing_kbs')
SOURCE_OPTIONS = ('interval', 'state_file', 'since', 'min_cve_addressed', 'devices', 'hostnames', 'filter')
# Each poll reads again this far before the time the last one reached: Defender publishes its
# changes every six hours, with a delay, so a change may appear later than its eventTimestamp says.
OVERLAP = datetime.timedelta(hours=12)
DEFAULT_SINCE = datetime.timedelta(hours=6)
CHECKPOINT_VERSION = 1


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _text(moment):
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ')


class Arguments:
    """The source's arguments, checked before any call; connection options resolve as for modules
    (the rulebook's value, then the MDE_* / AZURE_* environment variables)."""

    def __init__(self, args, environ=None, now=None):
        args = dict(args or {})
        unknown = sorted(set(args) - set(SOURCE_OPTIONS) - set(OPTIONS))
        if unknown:
            raise ValueError('defender.tvm.missing_kbs: unknown argument%s %s; it takes %s and the connection options '
                             'of the modules' % ('s' if len(unknown) > 1 else '', ', '.join(unknown),
                                                 ', '.join(SOURCE_OPTIONS)))
        now = now or _now()
        self.interval = self._integer(args, 'interval', 3600, 1)
        self.min_cve_addressed = self._integer(args, 'min_cve_addressed', 1, 0)
        self.devices = clean_ids(args['devices'], 'devices') if args.get('devices') is not None else None
        self.hostnames = self._hostnames(args.get('hostnames', list(DEFAULT_HOSTNAMES)))
        self.filter = args.get('filter')
        if self.filter is not None and not isinstance(self.filter, str):
            raise ValueError('defender.tvm.missing_kbs: filter must be an OData $filter string, got %r' % (self.filter,))
        oldest = now - datetime.timedelta(days=MAX_DELTA_DAYS)
        if args.get('since') is not None:
            self.since = parse_time('since', args['since'])
            if self.since < oldest:
                raise ValueError('defender.tvm.missing_kbs: since %s is more than %d days back (Defender keeps the '
                                 'changes of the last %d days); give a time after %s'
                                 % (args['since'], MAX_DELTA_DAYS, MAX_DELTA_DAYS, _text(oldest)))
        else:
            self.since = now - DEFAULT_SINCE
        connection = dict((k, v) for k, v in args.items() if k in OPTIONS)
        self.settings = Settings.from_adapter(OptionAdapter.from_action(connection, {}, os.environ if environ is None
                                                                        else environ))
        self.state_file = os.path.abspath(os.path.expanduser(args.get('state_file') or self._default_state_file()))

    @staticmethod
    def _hostnames(value):
        if not isinstance(value, list) or not value or any(field not in HOSTNAME_FIELDS for field in value):
            raise ValueError('defender.tvm.missing_kbs: hostnames must be a list of %s (as the inventory plugin '
                             'takes them), got %r' % (', '.join(HOSTNAME_FIELDS), value))
        return value

    @staticmethod
    def _integer(args, name, default, minimum):
        value = args.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError('defender.tvm.missing_kbs: %s must be an integer of at least %d, got %r'
                             % (name, minimum, value))
        return value

    def _default_state_file(self):
        """One checkpoint per tenant, app, API and device filter, in the user's state directory."""
        settings = self.settings
        identity = json.dumps([settings.tenant_id, settings.client_id, settings.api_url, self.devices])
        name = 'missing_kbs-%s.json' % hashlib.sha256(identity.encode('utf-8')).hexdigest()[:16]
        base = os.environ.get('XDG_STATE_HOME') or os.path.join(os.path.expanduser('~'), '.local', 'state')
        return os.path.join(base, 'defender_tvm', name)


class Checkpoint:
    """The time the source reached and the keys of the KBs it emitted inside the overlap, in a file
    written atomically (a new file renamed over the old one)."""

    def __init__(self, path, since):
        self.path = path
        self.start = self.reached = since  # the source reads nothing before ``start``
        self.emitted = {}  # "device|kb|event time" -> event time
        if os.path.exists(path):
            with open(path) as handle:
                saved = json.load(handle)
            if saved.get('version') != CHECKPOINT_VERSION:
                raise ValueError('defender.tvm.missing_kbs: %s is not a checkpoint of this source (version %r)'
                                 % (path, saved.get('version')))
            self.start = parse_time('start', saved['start'])
            self.reached = parse_time('reached', saved['reached'])
            self.emitted = dict(saved.get('emitted') or {})

    def read_from(self, now):
        """Where the next poll reads from: the overlap before the time reached, but never before
        where the source started, nor more than Defender keeps."""
        start = max(self.reached - OVERLAP, self.start)
        return max(start, now - datetime.timedelta(days=MAX_DELTA_DAYS) + datetime.timedelta(minutes=5))

    def advance(self, reached):
        """The poll read to ``reached``: keep only the keys the next poll can see again."""
        self.reached = max(self.reached, reached)
        horizon = _text(self.reached - OVERLAP - datetime.timedelta(hours=6))
        self.emitted = dict((key, when) for key, when in self.emitted.items() if when >= horizon)

    def save(self):
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o700)
        handle, temporary = tempfile.mkstemp(prefix='.missing_kbs-', dir=directory)
        try:
            with os.fdopen(handle, 'w') as out:
                json.dump({'version': CHECKPOINT_VERSION, 'start': _text(self.start), 'reached': _text(self.reached),
                           'emitted': self.emitted}, out, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            os.unlink(temporary)
            raise


def _key(device_id, kb):
    return '%s|%s|%s' % (device_id, kb['id'], kb.get('event_time') or '')


def _fresh_kbs(change, checkpoint, min_cve_addressed):
    """The KBs of a change that make an event: new, fixing at least ``min_cve_addressed`` of the
    device's findings, and not emitted before."""
    return [kb for kb in change['new_kbs']
            if kb['cve_addressed'] >= min_cve_addressed and _key(change['device_id'], kb) not in checkpoint.emitted]


def events_of(changes, checkpoint, min_cve_addressed, host_of=None):
    """The events of one poll: per device whose missing KBs grew by a KB not emitted before (and
    fixing at least ``min_cve_addressed`` of its findings), with that device's fixed KBs. Marks
    the KBs it emits in the checkpoint (saved by the caller once the events are queued).
    ``host_of`` maps device IDs (lowercase) to inventory host names (``inventory_hosts``); a device
    it does not name is named by its computer name, else its ID."""
    events = []
    for change in changes['changes']:
        device_id = change['device_id']
        new = _fresh_kbs(change, checkpoint, min_cve_addressed)
        if not new:
            continue
        for kb in new:
            checkpoint.emitted[_key(device_id, kb)] = kb.get('event_time') or _text(checkpoint.reached)
        host = (host_of or {}).get(device_id.lower()) or change['device_name'] or device_id
        events.append({
            'defender_tvm': {
                'device_id': device_id, 'device_name': change['device_name'],
                'new_kbs': [dict((k, kb[k]) for k in ('id', 'kb', 'cve_addressed')) for kb in new],
                'fixed_kbs': [dict((k, kb[k]) for k in ('id', 'kb', 'cve_addressed')) for kb in change['fixed_kbs']],
                'generated_time': change.get('event_time'),
            },
            'meta': {'hosts': host},
        })
    return events


def inventory_hosts(client, arguments, device_ids):
    """The inventory host name of each of ``device_ids`` (lowercase), as the inventory plugin names
    it with the same ``hostnames`` and ``filter`` (``host_names``: the one naming rule). Named by
    ID first, hosts need no device list."""
    if arguments.hostnames[0] == 'id' or not device_ids:
        return dict((device_id, device_id) for device_id in device_ids)
    machines = [m for m in list_devices(client, arguments.filter) if isinstance(m, dict) and m.get('id')]
    named, dummy = host_names(([m.get(field) for field in arguments.hostnames], m['id'], m.get('lastSeen'), m)
                              for m in machines)
    hosts = dict((m['id'].lower(), name) for name, m in named)
    unlisted = sorted(set(device_ids) - set(hosts))
    if unlisted:
        LOG.warning('defender.tvm.missing_kbs: %d device%s with new KBs %s not among the devices the inventory lists '
                    '(filter %s): %s', len(unlisted), '' if len(unlisted) == 1 else 's',
                    'is' if len(unlisted) == 1 else 'are', arguments.filter, ', '.join(unlisted))
    return hosts


def _poll(client, arguments, checkpoint):
    """One read of the changes (blocking: run in a thread), the time it reached, and the inventory
    host names of the devices that gained KBs."""
    started = _now()
    changes = read_changes(client, _text(checkpoint.read_from(started)), devices=arguments.devices)
    # (the checkpoint is read here and changed only on the event loop, after this returns)
    grown = [change['device_id'].lower() for change in changes['changes']
             if _fresh_kbs(change, checkpoint, arguments.min_cve_addressed)]
    return changes, started, inventory_hosts(client, arguments, grown)


async def main(queue, args):
    """Poll every ``interval`` seconds until cancelled; see DOCUMENTATION."""
    arguments = Arguments(args)
    checkpoint = Checkpoint(arguments.state_file, arguments.since)
    client = DefenderClient(arguments.settings, warn=LOG.warning)
    loop = asyncio.get_running_loop()
    LOG.info('defender.tvm.missing_kbs: polling every %d s from %s (checkpoint %s)', arguments.interval,
             _text(checkpoint.read_from(_now())), arguments.state_file)
    try:
        while True:
            try:
                changes, reached, host_of = await loop.run_in_executor(None, _poll, client, arguments, checkpoint)
            except DefenderError as exc:
                # throttled, unreachable, failing after the retries: nothing emitted, the checkpoint
                # kept, and the next poll tries again
                LOG.warning('defender.tvm.missing_kbs: this poll failed, trying again in %d s: %s',
                            arguments.interval, exc)
            else:
                for event in events_of(changes, checkpoint, arguments.min_cve_addressed, host_of):
                    await queue.put(event)
                checkpoint.advance(reached)
                await loop.run_in_executor(None, checkpoint.save)
                LOG.info('defender.tvm.missing_kbs: read %d changes to %s', changes['records_read'], _text(reached))
            await asyncio.sleep(arguments.interval)
    except asyncio.CancelledError:
        LOG.info('defender.tvm.missing_kbs: stopping')
        raise
    finally:
        client.close()


if __name__ == '__main__':
    # python missing_kbs.py: the source against the MDE_* environment, its events printed instead of
    # queued for a rulebook; Ctrl-C stops it.
    class _PrintQueue:
        async def put(self, event):
            print(json.dumps(event))  # noqa: T201

    logging.basicConfig(level=logging.INFO)
    try:
        asyncio.run(main(_PrintQueue(), {}))
    except (ConfigurationError, ValueError) as exc:
        sys.exit(str(exc))
    except KeyboardInterrupt:
        pass
