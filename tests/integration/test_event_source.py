# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The defender.tvm.missing_kbs event source in a real ansible-rulebook run (Drools on a Java 17
runtime), loaded from the installed collection by its FQCN, against an emulator whose data is
of today (snapshot "now"), so that the source's own clock and 14-day bound apply.

A rulebook fires a stand-in playbook (eda/record_event.yml) per event; a test-only source
(eda/sources/stop_file.py) ends the run through a shutdown rule once the test has seen what it
waits for. Waiting is for a condition, with a deadline; nothing sleeps a fixed time."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import glob
import json
import os
import subprocess
import sys

import pytest
import yaml

from ansible_collections.defender.tvm.tests.integration.harness import (
    HERE, RULEBOOK_DEADLINE, SIMULATION, start_rulebook, terminate, wait_for)
from ansible_collections.defender.tvm.tests.integration.win_updates_sim import calls, host_vars

pytestmark = pytest.mark.once

EDA = os.path.join(HERE, 'eda')
DELTA = 'software_vulnerability_changes_by_machine'


class Rulebook:
    """ansible-rulebook on a rulebook of the source, the stand-in playbook and the stop rule."""

    def __init__(self, emulator, tmp_path, since):
        self.emulator, self.tmp = emulator, tmp_path
        self.out_dir = tmp_path / 'runs'
        self.out_dir.mkdir()
        self.state_file = str(tmp_path / 'state' / 'missing_kbs.json')
        self.since = since
        self.inventory = str(tmp_path / 'inventory.yml')
        local = {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}
        hosts = dict((m['computerDnsName'] or mid, local) for mid, m in emulator.data['machines'].items())
        with open(self.inventory, 'w') as handle:
            yaml.safe_dump({'all': {'hosts': hosts}}, handle)
        self.runs = 0

    def start(self, **source_args):
        self.runs += 1
        self.stop_file = str(self.tmp / ('stop-%d' % self.runs))
        rulebook = [{
            'name': 'Record the devices that start missing KBs', 'hosts': 'all',
            'sources': [
                {'name': 'defender', 'defender.tvm.missing_kbs': dict({
                    'interval': 1, 'since': self.since, 'state_file': self.state_file, 'requests_per_minute': 0},
                    **source_args)},
                {'name': 'stop', 'stop_file': {'path': self.stop_file}},
            ],
            'rules': [
                {'name': 'Record the event', 'condition': 'event.defender_tvm.new_kbs is defined',
                 'action': {'run_playbook': {'name': os.path.join(EDA, 'record_event.yml'), 'extra_vars': {
                     'out_dir': str(self.out_dir),
                     'new_kbs': "{{ event.defender_tvm.new_kbs | map(attribute='kb') | list }}"}}}},
                {'name': 'Stop', 'condition': 'event.stop is defined',
                 'action': {'shutdown': {'delay': 60, 'message': 'the test has seen what it waited for'}}},
            ],
        }]
        path = str(self.tmp / ('rulebook-%d.yml' % self.runs))
        with open(path, 'w') as handle:
            yaml.safe_dump(rulebook, handle)
        self.process = start_rulebook(self.emulator, self.tmp, self.inventory, path,
                                      args=['-S', os.path.join(EDA, 'sources')])
        return self

    def polls(self):
        return self.emulator.stats()['api_by_route'][DELTA]

    def recorded(self):
        found = []
        for path in sorted(glob.glob(str(self.out_dir / '*.json'))):
            with open(path) as handle:
                found.append(json.load(handle))
        return found

    def stop(self):
        open(self.stop_file, 'w').close()
        try:
            output, dummy = self.process.communicate(timeout=RULEBOOK_DEADLINE)
        except subprocess.TimeoutExpired:
            output = terminate(self.process)
            pytest.fail('ansible-rulebook did not shut down:\n%s' % output[-6000:])
        assert self.process.returncode == 0, output[-6000:]
        return output


def expected_events(emulator, since):
    """device name -> its new KB names, from the emulator's ground truth of a read since ``since``."""
    machines = emulator.data['machines']
    return dict((machines[mid]['computerDnsName'] or mid, sorted('KB' + kb for kb in truth['new']))
                for mid, truth in emulator.delta_truth(since).items() if truth['new'])


def test_the_rulebook_fires_for_new_missing_kbs_only_and_not_again_after_a_restart(today, tmp_path):
    emulator = today
    machines = emulator.data['machines']
    by_name = dict((m['computerDnsName'], mid) for mid, m in machines.items() if m['computerDnsName'])
    # since: the last three days of Defender's six-hourly runs before the snapshot, and what came after
    since = (emulator.snapshot - datetime.timedelta(hours=72)).strftime('%Y-%m-%dT%H:%M:%SZ')
    # Changes after the snapshot: web01 (fully patched) starts missing a KB; a device is fixed of
    # one; another moves between device groups (a Fixed and a New of each of its findings). Those
    # two are devices with no change of their own in the window.
    patched = by_name['web01.contoso.local']
    unchanged = set(machines) - set(emulator.delta_truth(since))
    fixed_device, moved_device = [mid for mid in sorted(unchanged) if len(machines[mid]['missing_kbs']) > 1
                                  and mid != patched][:2]
    new_kb = '5034763' if '5034763' not in [k['id'] for k in machines[patched]['missing_kbs']] else '5034765'
    emulator.add_delta_changes([
        {'device_id': patched, 'kb': new_kb, 'status': 'New'},
        {'device_id': fixed_device, 'kb': machines[fixed_device]['missing_kbs'][0]['id'], 'status': 'Fixed'},
        {'device_id': moved_device, 'rbac_move': True},
    ])
    expected = expected_events(emulator, since)
    assert ('KB' + new_kb) in expected.get('web01.contoso.local', []) and len(expected) > 2
    fixed_only = [mid for mid, truth in emulator.delta_truth(since).items() if truth['fixed'] and not truth['new']]
    assert fixed_only, 'the window must hold devices that were only fixed'
    quiet = [machines[mid]['computerDnsName'] or mid for mid in [fixed_device, moved_device] + fixed_only]
    assert not set(quiet) & set(expected)
    emulator.reset()

    rulebook = Rulebook(emulator, tmp_path, since).start()
    wait_for('a run of the stand-in playbook per expected event',
             lambda: len(rulebook.recorded()) >= len(expected), rulebook.process)
    wait_for('two more polls after the events', lambda: rulebook.polls() >= 3, rulebook.process)
    output = rulebook.stop()

    recorded = rulebook.recorded()
    assert sorted(r['host'] for r in recorded) == sorted(expected), output[-4000:]
    for record in recorded:
        event = record['event']['defender_tvm']
        assert record['event']['meta']['hosts'] == record['host'] == event['device_name']
        assert sorted(k['kb'] for k in event['new_kbs']) == expected[record['host']] == sorted(record['kbs'])
        assert event['device_id'] == by_name[record['host']]
        assert all(k['cve_addressed'] >= 1 for k in event['new_kbs'])
    assert not set(quiet) & set(r['host'] for r in recorded)  # no event for a fixed KB or a group move
    with open(rulebook.state_file) as handle:
        checkpoint = json.load(handle)
    # where it started, and the keys of what it emitted that the next poll can read again
    assert checkpoint['start'] == since and any(key.startswith('%s|%s|' % (patched, new_kb)) for key in checkpoint['emitted'])
    assert emulator.stats()['token_requests'] == 1  # one token for every poll

    # A restart with the same state file fires nothing it fired before; a change after it fires once.
    emulator.reset()
    rulebook.start()
    wait_for('a poll after the restart', lambda: rulebook.polls() >= 1, rulebook.process)
    assert len(rulebook.recorded()) == len(recorded)
    later_kb = next(kb for kb in ('5034765', '5034770', '5034441', '5034122')
                    if kb != new_kb and kb not in [k['id'] for k in machines[patched]['missing_kbs']])
    emulator.add_delta_changes([{'device_id': patched, 'kb': later_kb, 'status': 'New'}])
    wait_for('the event of the change after the restart', lambda: len(rulebook.recorded()) > len(recorded),
             rulebook.process)
    polls = rulebook.polls()
    wait_for('another poll', lambda: rulebook.polls() > polls + 1, rulebook.process)
    rulebook.stop()
    new = [r for r in rulebook.recorded() if r not in recorded]
    assert [(r['host'], r['kbs']) for r in new] == [('web01.contoso.local', ['KB' + later_kb])]


def test_a_failing_poll_is_logged_and_the_source_goes_on(today, tmp_path):
    emulator = today
    emulator.reset()
    since = (emulator.snapshot - datetime.timedelta(hours=72)).strftime('%Y-%m-%dT%H:%M:%SZ')
    expected = expected_events(emulator, since)
    # the first two polls fail (503, no retry left), the third gets through
    emulator.configure(fail_next=[{'path_regex': 'SoftwareVulnerabilityChangesByMachine', 'status': 503, 'count': 2}])
    rulebook = Rulebook(emulator, tmp_path, since).start(max_retries=0)
    wait_for('the events after the failed polls', lambda: len(rulebook.recorded()) >= len(expected), rulebook.process)
    output = rulebook.stop()
    assert output.count('this poll failed, trying again in 1 s') == 2, output[-4000:]
    assert sorted(r['host'] for r in rulebook.recorded()) == sorted(expected)
    assert emulator.stats()['status_counts'].get('503') == 2


def test_the_shipped_rulebook_patches_a_device_that_starts_missing_a_kb(today, tmp_path):
    """defender.tvm.patch_new_missing_kbs by its FQCN, as shipped: the event runs defender.tvm.patch
    on that device (a simulated Windows Update agent), installing exactly its new KB."""
    emulator = today
    machines = emulator.data['machines']
    mid = sorted(m for m in machines if not machines[m]['missing_kbs'] and machines[m]['computerDnsName']
                 and machines[m]['osPlatform'].startswith('Windows') and machines[m]['computerDnsName'] != 'web01.contoso.local')[0]
    emulator.add_delta_changes([{'device_id': mid, 'kb': '5034441', 'status': 'New'}])
    machine = emulator.data['machines'][mid]
    assert [k['id'] for k in machine['missing_kbs']] == ['5034441']
    host, state_dir = machine['computerDnsName'], str(tmp_path / 'agents')
    inventory = str(tmp_path / 'inventory.yml')
    with open(inventory, 'w') as handle:
        yaml.safe_dump({'all': {'hosts': {host: dict(host_vars(state_dir, machine),
                                                     ansible_python_interpreter=sys.executable)}}}, handle)
    process = start_rulebook(emulator, tmp_path, inventory, 'defender.tvm.patch_new_missing_kbs',
                             extra_collections=[SIMULATION])
    try:
        wait_for('the patch run to verify the device', lambda: [c['args'].get('state') for c in calls(state_dir, host)]
                 == ['searched', 'installed', 'searched'], process)
    finally:
        output = terminate(process)  # the shipped rulebook runs until stopped: a hard stop
    installs = [c['args'] for c in calls(state_dir, host) if c['args'].get('state') == 'installed']
    assert [sorted(i['accept_list']) for i in installs] == [[r'KB5034441(?:\s+KB\d+)*$']], output[-4000:]
    assert os.listdir(str(tmp_path / 'state' / 'defender_tvm')), 'the checkpoint is in the user state directory'


def test_the_shipped_rulebook_names_the_source_and_the_playbook():
    path = os.path.join(os.path.dirname(os.path.dirname(HERE)), 'extensions', 'eda', 'rulebooks',
                        'patch_new_missing_kbs.yml')
    with open(path) as handle:
        (ruleset,) = yaml.safe_load(handle)
    assert [key for source in ruleset['sources'] for key in source if key != 'name'] == ['defender.tvm.missing_kbs']
    action = ruleset['rules'][0]['action']['run_playbook']
    assert action['name'] == 'defender.tvm.patch' and action['extra_vars']['kb_patching_strategy'] == 'export'
