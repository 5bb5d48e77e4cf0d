# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Simulated Windows hosts for Defender's devices, and what their simulated agents were asked.

The test-only ansible.windows.win_updates of tests/integration/collections (harness.SIMULATION)
runs each host's Windows Update agent from its inventory variables (``sim_windows_update``, ...)
and records every call in <state dir>/<host>.calls.jsonl.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os


def devices(emulator, count):
    """``count`` Defender devices that miss at least two KBs, by short name."""
    found = sorted((m for m in emulator.data['machines'].values() if len(m['missing_kbs']) >= 2),
                   key=lambda m: m['computerDnsName'])
    return dict((m['computerDnsName'].split('.')[0], m) for m in found[:count])


def agent(machine, not_offered=(), failing=(), reboot=()):
    """A simulated Windows Update agent offering the device's missing KBs, except ``not_offered``."""
    updates = {}
    for index, kb in enumerate(machine['missing_kbs']):
        if kb['id'] in not_offered:
            continue  # superseded or not applicable: Windows Update does not offer it
        update = {'title': '%s (KB%s)' % (kb['name'], kb['id']), 'kb': [kb['id']], 'categories': ['Security Updates']}
        if kb['id'] in failing:
            update['fail'] = {'hresult': 0x80240022, 'msg': 'The update could not be installed'}
        if kb['id'] in reboot:
            update['reboot_required'] = True
        updates['%08d-0000-4000-8000-%012d' % (index, int(kb['id']))] = update
    return {'updates': updates, 'installed_kbs': ['5000001']}


def host_vars(state_dir, machine, **agent_kwargs):
    """The inventory variables of a simulated host for ``machine`` (``agent`` arguments, and
    ``lose_connection``: the reboot drops the connection)."""
    lose = agent_kwargs.pop('lose_connection', False)
    return {'ansible_connection': 'local', 'sim_windows_update_state_dir': state_dir,
            'sim_windows_update': agent(machine, **agent_kwargs), 'sim_lose_connection_on_reboot': lose}


def calls(state_dir, host):
    """The win_updates calls the simulation recorded for ``host``, in order."""
    path = os.path.join(state_dir, host + '.calls.jsonl')
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def kb_names(machine):
    """The device's missing KBs, as sorted KB names."""
    return sorted('KB' + kb['id'] for kb in machine['missing_kbs'])
