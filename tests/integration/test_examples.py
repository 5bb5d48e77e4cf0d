# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every EXAMPLES task of every module and lookup runs, as written, against the emulator.

The plugins are found on disk, so a new module or lookup is covered without touching this file.
Each plugin's EXAMPLES become the tasks of one play on localhost, in their order (later tasks use
what earlier ones registered), run by a real ansible-playbook. A small callback records every
task's result, and each example task must have succeeded; where it is cheap, its result is
compared with what the emulator's data says.

What is changed before they run, and only that, is listed below: SUBSTITUTIONS (values that name
something that cannot exist here: a certificate on disk, a regional API host, placeholder IDs),
VARIABLES (what a user's inventory or vault would define), EXPECTED_FAILURES (tasks meant to fail
on this data), EXPECTED_SKIPS (conditional tasks whose condition is false on this data) and NOT_RUN
(tasks that cannot run here, with the reason; none today). A task that is
in none of them and did not succeed fails the test, and so does an entry of these tables that no
longer matches the EXAMPLES. ansible.windows.win_updates runs against the test-only simulation of
tests/integration/collections (harness.SIMULATION), on a simulated Windows Update agent.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import glob
import json
import os

import pytest
import yaml

from ansible.playbook.task import Task

from ansible_collections.defender.tvm.tests.integration.harness import COLLECTION_ROOT, SIMULATION
from ansible_collections.defender.tvm.tests.integration.helpers import expected_records

pytestmark = pytest.mark.representative

PLUGIN_DIRS = {'module': 'modules', 'lookup': 'lookup'}

# Actions an example may use that run here. Anything else must be listed in NOT_RUN with a reason.
RUNNABLE_PREFIXES = ('defender.tvm.', 'ansible.builtin.')
WIN_UPDATES = 'ansible.windows.win_updates'  # runs on the simulation (SIMULATION first on the collections path)


def substitutions(emulator):
    """Per plugin: literal values of its EXAMPLES -> what stands in for them here (replaced inside strings)."""
    cert = emulator.clients['cert']
    return {
        ('module', 'missing_kbs_info'): {
            # "Certificate credential on a regional API host": placeholder tenant and app IDs, a PFX
            # file, and a regional host, for the emulator's tenant, certificate app, PFX and URL.
            '00000000-0000-0000-0000-000000000000': emulator.tenant_id,
            '11111111-1111-1111-1111-111111111111': cert['client_id'],
            '/etc/defender/app.pfx': cert['pfx_path'],
            'https://eu.api.security.microsoft.com': emulator.url,
        },
        ('module', 'device_missing_kbs_info'): {
            # the play's host stands for an emulator device: its inventory name is not the device's
            '{{ ansible_play_hosts_all }}': '{{ [kb_patching_device_name] }}',
        },
        ('lookup', 'missing_kbs'): {
            # "Explicit options": the PEM (key and certificate) of the emulator's certificate app.
            # cloud='gcc_high' stays: MDE_API_URL and MDE_AUTHORITY_URL of the environment point it at
            # the emulator (no instance discovery for a custom authority), which accepts the gov scope.
            '/etc/defender/app.pem': cert['certificate_path'],
        },
    }


def variables(emulator):
    """Per plugin: the variables its EXAMPLES use without defining them (from an inventory or a vault)."""
    secret, cert = emulator.clients['secret'], emulator.clients['cert']
    return {
        ('module', 'missing_kbs_info'): {
            # module_defaults with a client secret: the emulator's secret app
            'mde_tenant_id': emulator.tenant_id,
            'mde_client_id': secret['client_id'],
            'mde_client_secret': secret['client_secret'],
            'vault_pfx_password': cert['password'],  # the PFX's password
        },
        ('module', 'device_missing_kbs_info'): {
            'last_run_time': LAST_RUN_TIME,  # a time inside the emulator's 14 days of changes
        },
        ('lookup', 'missing_kbs'): {
            # explicit options with a certificate: the emulator's certificate app
            'mde_tenant_id': emulator.tenant_id,
            'mde_client_id': cert['client_id'],
        },
    }


# (plugin, task name) -> why the task fails here, as it would for a user with this data. The harness
# adds ignore_errors to it (nothing else), and CHECKS assert the failure is the expected one.
EXPECTED_FAILURES = {
    (('module', 'missing_kbs_info'), 'Fail a pipeline when a critical KB is missing'):
        'the gate is meant to fail: Edge misses KB4540673, which addresses 14 CVEs',
    (('module', 'kb_report'), 'Fail once when a host is not compliant'):
        'the gate is meant to fail: the play\'s Windows host misses KBs',
}

# (plugin, task name) -> why the task's condition is false on this data, so that it is skipped (its
# `when` is evaluated, nothing else). The test checks that it was skipped by its condition.
EXPECTED_SKIPS = {}

# (plugin, task name) -> why the task cannot run here. It is left out of the play. None today.
NOT_RUN = {}


# -- the EXAMPLES ------------------------------------------------------------------------------------------------


def python_constant(path, name):
    with open(path) as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    return None


def plugins_with_examples():
    found = []
    for kind, directory in sorted(PLUGIN_DIRS.items()):
        for path in sorted(glob.glob(os.path.join(COLLECTION_ROOT, 'plugins', directory, '*.py'))):
            name = os.path.basename(path)[:-3]
            if name.startswith('_'):
                continue
            found.append((kind, name, path))
    return found


PLUGINS = plugins_with_examples()


def leaf_tasks(tasks):
    """The tasks of a task list, blocks flattened (their block/rescue/always, in order)."""
    leaves = []
    for task in tasks:
        if any(key in task for key in ('block', 'rescue', 'always')):
            for key in ('block', 'rescue', 'always'):
                leaves.extend(leaf_tasks(task.get(key) or []))
        else:
            leaves.append(task)
    return leaves


def action_of(task):
    """The task's action: its one key that is not a task keyword."""
    keys = [k for k in task if k not in Task.fattributes and not k.startswith('with_')]
    assert len(keys) == 1, 'cannot tell the action of the example task %r: %s' % (task.get('name'), keys)
    return keys[0]


def substitute(node, table, used):
    if isinstance(node, dict):
        return dict((key, substitute(value, table, used)) for key, value in node.items())
    if isinstance(node, list):
        return [substitute(value, table, used) for value in node]
    if isinstance(node, str):
        for old, new in table.items():
            if old in node:
                used.add(old)
                node = node.replace(old, new)
    return node


def prepare(plugin, tasks, table):
    """The tasks to run: substituted, NOT_RUN ones left out, EXPECTED_FAILURES ones with ignore_errors."""
    used = set()
    tasks = substitute(tasks, table, used)
    assert used == set(table), 'substitutions for %s that its EXAMPLES no longer contain: %s' % (
        plugin, sorted(set(table) - used))

    def walk(items):
        kept = []
        for task in items:
            task = dict(task)
            if any(key in task for key in ('block', 'rescue', 'always')):
                for key in ('block', 'rescue', 'always'):
                    if key in task:
                        task[key] = walk(task[key])
            elif (plugin, task.get('name')) in NOT_RUN:
                continue
            elif (plugin, task.get('name')) in EXPECTED_FAILURES:
                task['ignore_errors'] = True
            kept.append(task)
        return kept
    return walk(tasks)


# -- running them ------------------------------------------------------------------------------------------------

RECORDER = r'''
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
from collections.abc import Mapping

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: example_recorder
type: aggregate
short_description: test-only, records each task result as JSON lines
description: [test-only]
"""


def plain(value):
    if isinstance(value, Mapping):
        return dict((str(k), plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'example_recorder'
    CALLBACK_NEEDS_ENABLED = True

    def _record(self, result, status):
        data = getattr(result, 'result', None)
        data = data if isinstance(data, Mapping) else result._result
        with open(os.environ['EXAMPLE_RECORDER_FILE'], 'a') as handle:
            handle.write(json.dumps({'task': str(result.task_name), 'status': status, 'result': plain(data)}) + '\n')

    def v2_runner_on_ok(self, result, **kwargs):
        self._record(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False, **kwargs):
        self._record(result, 'failed')

    def v2_runner_on_skipped(self, result, **kwargs):
        self._record(result, 'skipped')

    def v2_runner_on_unreachable(self, result, **kwargs):
        self._record(result, 'unreachable')
'''


WINDOWS_HOST = 'win01'
LAST_RUN_TIME = '2024-02-17T00:00:00Z'


def windows_device(emulator):
    """The emulator device the example play's host stands for: a Windows 11 device that misses KBs."""
    return sorted((m for m in emulator.data['machines'].values()
                   if 'microsoft-_-windows_11' in m['software'] and m['missing_kbs']), key=lambda m: m['computerDnsName'])[0]


def offered_updates(emulator):
    """A simulated Windows Update agent offering an update for every KB of the emulator, plus decoys
    that a loose pattern for KB4540673 would select."""
    updates = {}
    for index, (kb, info) in enumerate(sorted(emulator.data['kbs'].items())):
        updates['%08d-0000-4000-8000-%012d' % (index, int(kb))] = {
            'title': '%s (KB%s)' % (info['name'], kb), 'kb': [kb], 'categories': ['Security Updates']}
    updates['decoy-0000-4000-8000-title'] = {'title': 'Servicing stack update, supersedes KB4540673 (KB9990001)',
                                             'kb': ['9990001'], 'categories': ['Security Updates']}
    updates['decoy-0000-4000-8000-prefix'] = {'title': 'Security update (KB45406731)', 'kb': ['45406731'],
                                              'categories': ['Security Updates']}
    return {'updates': updates, 'installed_kbs': ['5000001']}


class ExampleRun:
    def __init__(self, run, records, tmp):
        self.rc = run.rc
        self.output = run.output
        self.records = records
        self.tmp = tmp
        self.by_task = dict((r['task'], r) for r in records)

    def result(self, task):
        assert task in self.by_task, 'no result for %r:\n%s' % (task, self)
        return self.by_task[task]['result']

    def win_updates_state(self):
        with open(os.path.join(str(self.tmp), 'win_updates', WINDOWS_HOST + '.json')) as handle:
            return json.load(handle)

    def __repr__(self):
        return 'ExampleRun(rc=%s)\n%s' % (self.rc, self.output[-8000:])


def run_examples(ansible, emulator, tasks, play_vars, win_updates):
    """The tasks as pasted into a play on the Windows hosts: one host, whose Windows Update agent is
    simulated (its connection is local: the simulation runs on the controller), named after an
    emulator device; the examples themselves say what runs on the controller."""
    tmp = ansible.tmp_path
    callbacks = tmp / 'callback_plugins'
    callbacks.mkdir()
    (callbacks / 'example_recorder.py').write_text(RECORDER)
    records_file = str(tmp / 'records.jsonl')
    play = {'name': 'EXAMPLES', 'hosts': 'windows', 'gather_facts': False, 'vars': play_vars, 'tasks': tasks}
    playbook = str(tmp / 'examples.yml')
    with open(playbook, 'w') as handle:
        yaml.safe_dump([play], handle, default_flow_style=False, sort_keys=False)
    hosts = {WINDOWS_HOST: {'ansible_connection': 'local',
                            'kb_patching_device_name': windows_device(emulator)['computerDnsName']}}
    # the secret app's credentials, and the recorder
    env = dict(ansible.credentials(), ANSIBLE_CALLBACK_PLUGINS=str(callbacks), ANSIBLE_CALLBACKS_ENABLED='example_recorder',
               EXAMPLE_RECORDER_FILE=records_file)
    run = ansible.playbook(playbook, hosts=hosts, env=env, extra_collections=[SIMULATION] if win_updates else [],
                           tag='examples')
    records = []
    if os.path.exists(records_file):
        with open(records_file) as handle:
            records = [json.loads(line) for line in handle if line.strip()]
    return ExampleRun(run, records, tmp)


# -- what the results must be, per plugin (where it is cheap to say) ------------------------------------------------


def missing_kbs_info_checks(run, emulator):
    data = emulator.data
    software, machines = data['software'], data['machines']

    missing = run.result('Missing KBs for Edge and Windows 11, with credentials from the environment')
    assert [r['software_id'] for r in missing['results']] == ['microsoft-_-edge', 'microsoft-_-windows_11']
    for entry in missing['results']:
        assert entry['missing_kbs'] == expected_records(software[entry['software_id']]['missing_kbs'])
    edge = missing['results'][0]['missing_kbs']
    assert [(k['kb'], k['machine_missed_on'], k['cve_addressed']) for k in edge] == [('KB4540673', 240, 14)]
    wanted = set(k['id'] for k in missing['missing_kbs'])
    assert 'KB4540673' in [k['kb'] for k in missing['missing_kbs']] and len(wanted) > 1

    installed = run.result('Install exactly those KBs')
    assert not installed.get('failed') and installed['installed_update_count'] == len(wanted), installed
    state = run.win_updates_state()
    assert set(state['installed_kbs']) - {'5000001'} == wanted  # exactly those KBs, no decoy
    assert not any(guid.startswith('decoy') for guid in state['installed_updates'])

    devices = run.result('Query two devices, one by computer name')
    sql = next(m for m in machines.values() if m['computerDnsName'] == 'srv-sql01.contoso.local')
    assert devices['not_found'] == []
    assert [r['machine_id'] for r in devices['results']] == ['2339ad14a01bd0299afb93dfa2550136057bff96', sql['id']]
    for entry in devices['results']:
        assert entry['missing_kbs'] == expected_records(machines[entry['machine_id']]['missing_kbs'])
    assert [k['kb'] for k in devices['results'][0]['missing_kbs']] == ['KB4540673']

    regional = run.result('Certificate credential on a regional API host')
    assert regional['results'][0]['missing_kbs'] == expected_records(software['microsoft-_-.net_framework']['missing_kbs'])
    assert emulator.stats()['token_requests_by_client'].get('cert') == 1  # signed in with the PFX of the cert app

    gate = run.result('Fail a pipeline when a critical KB is missing')
    assert run.by_task['Fail a pipeline when a critical KB is missing']['status'] == 'failed'
    assert gate['evaluated_to'] is False, gate  # the assertion itself failed, not something before it
    assert gate['msg'] == 'Missing: ' + ', '.join(k['kb'] for k in missing['missing_kbs'])


def missing_kbs_lookup_checks(run, emulator):
    software = emulator.data['software']
    edge = expected_records(software['microsoft-_-edge']['missing_kbs'])

    assert run.result('Missing KBs of Edge, credentials from MDE_* / AZURE_* environment variables')['msg'] == ['KB4540673']

    urgent = []
    for sid in ('microsoft-_-windows_11', 'microsoft-_-.net_framework'):
        for record in expected_records(software[sid]['missing_kbs']):
            if record['cve_addressed'] >= 10 and record['kb'] not in urgent:
                urgent.append(record['kb'])
    assert urgent
    facts = run.result('The KBs that address 10 CVEs or more, across several products')['ansible_facts']
    assert facts['urgent_kbs'] == urgent

    explicit = run.result('Explicit options (secrets from variables, never literal)')['ansible_facts']
    assert explicit['edge_kbs'] == [dict(r, software_id='microsoft-_-edge') for r in edge]
    assert emulator.stats()['token_requests_by_client'].get('cert') == 1  # signed in with the cert app's PEM


def software_info_checks(run, emulator):
    software, machines = emulator.data['software'], emulator.data['machines']
    inventory = run.result('Every Microsoft software with known weaknesses')
    assert sorted(s['id'] for s in inventory['software']) == sorted(
        i for i, s in software.items() if s['vendor'] == 'microsoft')
    ids = run.result('Their IDs, for defender.tvm.missing_kbs_info')['ansible_facts']['vulnerable_ids']
    assert 'microsoft-_-edge' in ids
    assert sorted(ids) == sorted(i for i, s in software.items() if s['vendor'] == 'microsoft' and s['weaknesses'] > 0)
    installed = run.result('Which devices have Windows 11 and Office')
    for entry in installed['software']:
        assert sorted(r['id'] for r in entry['machine_references']) == sorted(software[entry['id']]['machines'])
    shown = run.result('Device names per software')['results']
    assert [item['msg'].split(':')[0] for item in shown] == ['microsoft-_-windows_11', 'microsoft-_-office']
    assert all(machines[mid]['computerDnsName'] in shown[0]['msg'] for mid in software['microsoft-_-windows_11']['machines'])


def kb_plan_checks(run, emulator):
    software, device = emulator.data['software'], windows_device(emulator)
    plan = run.result("Plan each Windows host's KBs, asking Defender once")['plan']
    host = plan['hosts'][WINDOWS_HOST]
    assert host['device_id'] == device['id']
    expected = set('KB' + kb['id'] for sid in ('microsoft-_-windows_11', 'microsoft-_-.net_framework')
                   if sid in device['software'] for kb in software[sid]['missing_kbs'] if kb['cveAddressed'] >= 5)
    assert expected and set(host['kbs']) == expected
    state = run.win_updates_state()
    assert set('KB' + kb for kb in state['installed_kbs']) - {'KB5000001'} == expected  # exactly the planned KBs
    assert emulator.stats()['token_requests'] == 1


def device_missing_kbs_info_checks(run, emulator):
    device = windows_device(emulator)
    truth = emulator.export_truth()

    def kbs(entry):
        return dict((k['id'], k['cve_addressed']) for k in entry['missing_kbs'])

    hosts = run.result("The missing KBs of this play's hosts, from the vulnerability export")
    assert [d['device_id'] for d in hosts['devices']] == [device['id']] and hosts['not_found'] == []
    assert kbs(hosts['devices'][0]) == truth[device['id']]
    assert [k['id'] for k in hosts['missing_kbs']][:1] == [hosts['devices'][0]['missing_kbs'][0]['id']]
    shown = run.result('How many of them miss KBs, and the most urgent KB')['msg']
    assert shown.startswith('1 devices miss KBs; the most urgent is %s' % hosts['missing_kbs'][0]['kb']), shown

    fleet = run.result('For a large tenant, read the export\'s files instead')
    assert dict((d['device_id'], kbs(d)) for d in fleet['devices'] if d['missing_kbs']) == truth
    assert fleet['generated_time'] == emulator.export_summary()['generated_time']

    changes = run.result('What became missing and what was fixed since the last run')
    expected = emulator.delta_truth(LAST_RUN_TIME)
    assert changes['since'] == LAST_RUN_TIME and changes['changes']
    assert dict((c['device_id'], sorted(k['id'] for k in c['new_kbs'])) for c in changes['changes']) == dict(
        (mid, sorted(t['new'])) for mid, t in expected.items() if t['new'] or t['fixed'])


def kb_report_checks(run, emulator):
    device = windows_device(emulator)
    reported = run.result('Ask Defender about every Windows host, and write the reports on the controller')
    with open(os.path.join(reported['report_dir'], 'kb_patching.json')) as handle:
        report = json.load(handle)
    assert list(report['hosts']) == [WINDOWS_HOST] and report['hosts'][WINDOWS_HOST]['device_id'] == device['id']
    assert sorted(report['hosts'][WINDOWS_HOST]['kbs']) == sorted('KB' + kb for kb in emulator.export_truth()[device['id']])
    assert reported['gate']['message'].startswith('1 of 1 hosts are not compliant (report mode, export strategy)')
    assert run.result('Fail once when a host is not compliant')['msg'] == reported['gate']['message']


CHECKS = {
    ('module', 'device_missing_kbs_info'): device_missing_kbs_info_checks,
    ('module', 'kb_plan'): kb_plan_checks,
    ('module', 'kb_report'): kb_report_checks,
    ('module', 'missing_kbs_info'): missing_kbs_info_checks,
    ('lookup', 'missing_kbs'): missing_kbs_lookup_checks,
    ('module', 'software_info'): software_info_checks,
}


# -- the tests ---------------------------------------------------------------------------------------------------


def test_every_plugin_is_found_and_the_tables_name_real_tasks(emulator):
    names = [(kind, name) for kind, name, dummy in PLUGINS]
    assert ('module', 'missing_kbs_info') in names and ('lookup', 'missing_kbs') in names
    for table in (substitutions(emulator), variables(emulator), CHECKS):
        assert set(table) <= set(names), 'entries for plugins that do not exist: %s' % sorted(set(table) - set(names))
    tasks = {}
    for kind, name, path in PLUGINS:
        examples = python_constant(path, 'EXAMPLES')
        tasks[(kind, name)] = [t.get('name') for t in leaf_tasks(yaml.safe_load(examples) or [])] if examples else []
    for plugin, task in list(EXPECTED_FAILURES) + list(EXPECTED_SKIPS) + list(NOT_RUN):
        assert task in tasks.get(plugin, []), 'the table entry %r names no EXAMPLES task of %s' % (task, plugin)


@pytest.mark.parametrize('kind,name,path', PLUGINS, ids=['%s/%s' % (k, n) for k, n, dummy in PLUGINS])
def test_examples_run_against_the_emulator(ansible, emulator, kind, name, path):
    plugin = (kind, name)
    examples = python_constant(path, 'EXAMPLES')
    assert examples and examples.strip(), '%s %s has no EXAMPLES' % (kind, name)
    tasks = yaml.safe_load(examples)
    assert isinstance(tasks, list) and tasks, 'the EXAMPLES of %s %s are not a task list' % (kind, name)

    leaves = leaf_tasks(tasks)
    names = [t.get('name') for t in leaves]
    assert all(names) and len(set(names)) == len(names), 'every example task needs a unique name: %s' % names
    actions = dict((t['name'], action_of(t)) for t in leaves)
    not_runnable = [n for n, a in actions.items() if (plugin, n) not in NOT_RUN and not (
        a.startswith(RUNNABLE_PREFIXES) or a == WIN_UPDATES)]
    assert not not_runnable, ('example tasks of %s %s that cannot run here and are not in NOT_RUN (add the reason '
                              'there, or make them runnable): %s' % (kind, name, not_runnable))

    play_vars = dict(variables(emulator).get(plugin, {}))
    unused = [v for v in play_vars if v not in examples]
    assert not unused, 'variables for %s that its EXAMPLES no longer use: %s' % (plugin, unused)
    win_updates = WIN_UPDATES in actions.values()
    if win_updates:
        play_vars.update({'sim_windows_update': offered_updates(emulator),
                          'sim_windows_update_state_dir': str(ansible.tmp_path / 'win_updates')})

    run = run_examples(ansible, emulator, prepare(plugin, tasks, substitutions(emulator).get(plugin, {})), play_vars,
                       win_updates)

    expected = [n for n in names if (plugin, n) not in NOT_RUN]
    for task in expected:
        assert task in run.by_task, 'the example task %r did not run:\n%r' % (task, run)
        record = run.by_task[task]
        if (plugin, task) in EXPECTED_FAILURES:
            assert record['status'] == 'failed', (task, record)
        elif (plugin, task) in EXPECTED_SKIPS:
            assert record['status'] == 'skipped', (task, record)
            assert record['result'].get('skip_reason') == 'Conditional result was False', (task, record)
        else:
            assert record['status'] == 'ok', 'the example task %r %s: %s\n%r' % (
                task, record['status'], record['result'].get('msg'), run)
    assert [r['task'] for r in run.records] == expected, run  # each example task ran once, in order
    assert run.rc == 0, run
    if plugin in CHECKS:
        CHECKS[plugin](run, emulator)
