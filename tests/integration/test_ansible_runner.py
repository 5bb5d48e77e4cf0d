# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection playbooks run as AWX runs a job: ``ansible-runner run`` on a private data dir.

ansible-runner starts ansible-playbook in ``<private_data_dir>/project`` and passes it its own
environment, so ``PWD`` stays the caller's directory. Relative paths (``kb_patching_report_dir``,
the hook task files of defender.tvm.patch) must resolve against the project directory, inside the
job, and nothing may land in the caller's directory.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import shutil
import subprocess
import sys

import yaml

from ansible_collections.defender.tvm.tests.integration.harness import SIMULATION
from ansible_collections.defender.tvm.tests.integration.helpers import inventory, machines_by_name
from ansible_collections.defender.tvm.tests.integration.win_updates_sim import calls, devices, host_vars, kb_names

VENV_BIN = os.path.dirname(sys.executable)
REPORTS = ('kb_patching.json', 'kb_patching.junit.xml', 'kb_patching.md', 'kb_patching.html')


class RunnerJob:
    """One ``ansible-runner run`` and what it left in its private data dir."""

    def __init__(self, proc, private_data_dir, ident):
        self.proc_rc = proc.returncode
        self.private_data_dir = private_data_dir
        self.project = os.path.join(private_data_dir, 'project')
        artifacts = os.path.join(private_data_dir, 'artifacts', ident)
        self.status = self._read(os.path.join(artifacts, 'status'))
        self.rc = self._read(os.path.join(artifacts, 'rc'))
        self.stdout = self._read(os.path.join(artifacts, 'stdout')) or ''
        self.output = proc.stdout + proc.stderr
        self.command = json.loads(self._read(os.path.join(artifacts, 'command')) or 'null')
        path = os.path.join(self.project, 'reports', 'kb_patching.json')
        self.report = None
        if os.path.exists(path):
            with open(path) as handle:
                self.report = json.load(handle)

    @staticmethod
    def _read(path):
        if not os.path.exists(path):
            return None
        with open(path) as handle:
            return handle.read().strip()

    def __repr__(self):
        return 'RunnerJob(status=%s, rc=%s, proc_rc=%s)\n%s\n%s' % (
            self.status, self.rc, self.proc_rc, self.stdout[-6000:], self.output[-3000:])


def runner_job(ansible, tmp_path, playbook, hosts, extra_vars=None, extra_collections=(), project_files=None, ident='job'):
    """``ansible-runner run <private_data_dir> -p defender.tvm.<playbook>`` from a caller's directory
    (its cwd and PWD), with the private data dir laid out as AWX lays out a job's: project/,
    inventory/, env/envvars (the job's environment: credentials and Ansible settings, never on a
    command line) and env/extravars."""
    private_data_dir = tmp_path / 'job'
    for name in ('project', 'inventory', 'env'):
        (private_data_dir / name).mkdir(parents=True)
    for name, content in (project_files or {}).items():
        path = private_data_dir / 'project' / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    with open(str(private_data_dir / 'inventory' / 'hosts.yml'), 'w') as handle:
        yaml.safe_dump({'all': {'children': {'windows': {'hosts': hosts}}}}, handle)
    # playbook_env and the emulator's credentials: the job's part (MDE_*, ANSIBLE_*) goes to
    # env/envvars, the machine's part (PATH, HOME, ...) is the runner's own environment.
    built = ansible.env(extra_collections=list(extra_collections), pwd=False)
    job_env = dict((k, v) for k, v in built.items() if k.startswith(('MDE_', 'ANSIBLE_')))
    with open(str(private_data_dir / 'env' / 'envvars'), 'w') as handle:
        json.dump(job_env, handle)
    variables = {'kb_patching_report_dir': 'reports'}  # relative, as a job template would give it
    variables.update(extra_vars or {})
    with open(str(private_data_dir / 'env' / 'extravars'), 'w') as handle:
        json.dump(variables, handle)
    caller = tmp_path / 'caller'
    caller.mkdir()
    runner_env = dict((k, v) for k, v in built.items() if k not in job_env)
    # ansible-runner runs "ansible-playbook" from PATH: the venv's, whose Python runs the localhost
    # tasks (ANSIBLE_PYTHON_INTERPRETER, from playbook_env, in env/envvars).
    runner_env['PATH'] = VENV_BIN + os.pathsep + runner_env.get('PATH', '')
    runner_env['PWD'] = str(caller)  # as the caller's shell set it
    runner = os.path.join(VENV_BIN, 'ansible-runner')
    assert os.path.exists(runner), 'ansible-runner is not installed in the venv (requirements-test.txt)'
    command = [runner, 'run', str(private_data_dir), '-p', 'defender.tvm.%s' % playbook, '--ident', ident]
    proc = subprocess.run(command, env=runner_env, cwd=str(caller), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=900, check=False)
    job = RunnerJob(proc, str(private_data_dir), ident)
    job.caller = str(caller)
    job.secret = job_env.get('MDE_CLIENT_SECRET')
    return job


def assert_ran_as_awx_runs_it(job):
    """The conditions of the bug: ansible-playbook (the venv's) in the project directory, PWD the caller's."""
    assert job.command is not None, job
    assert job.command['cwd'] == job.project
    assert job.command['env']['PWD'] == job.caller != job.project
    assert job.command['command'][0] == 'ansible-playbook'
    assert shutil.which('ansible-playbook', path=job.command['env']['PATH']) == os.path.join(VENV_BIN, 'ansible-playbook')
    assert job.command['env']['ANSIBLE_PYTHON_INTERPRETER'] == sys.executable
    assert job.secret and job.secret not in ' '.join(job.command['command'])


def test_compliance_under_ansible_runner_writes_the_reports_in_the_project_directory(ansible, emulator, tmp_path):
    # three Defender devices and brand-new-host, which Defender does not know; all with harness.py's
    # UNREACHABLE_WINDOWS connection: report mode contacts no host
    hosts = inventory(emulator, 3)
    job = runner_job(ansible, tmp_path, 'compliance', hosts)
    assert_ran_as_awx_runs_it(job)
    reports = os.path.join(job.project, 'reports')
    assert os.path.isdir(reports), ('no reports in the project directory; in the caller\'s: %s' % os.listdir(job.caller), job)
    assert sorted(os.listdir(reports)) == sorted(REPORTS), job
    assert os.listdir(job.caller) == [], job  # nothing in the caller's directory
    assert sorted(os.listdir(job.private_data_dir)) == ['artifacts', 'env', 'inventory', 'project']
    assert os.listdir(job.project) == ['reports']
    machines = machines_by_name(emulator)
    expected = {}
    for host in hosts:
        machine = machines.get(host + '.contoso.local')
        expected[host] = 'not_in_defender' if machine is None else (
            'noncompliant' if machine['missing_kbs'] else 'compliant')
        if machine is not None:
            assert sorted(job.report['hosts'][host]['kbs']) == sorted('KB' + kb['id'] for kb in machine['missing_kbs'])
    assert dict((h, e['status']) for h, e in job.report['hosts'].items()) == expected
    noncompliant = sorted(h for h, s in expected.items() if s == 'noncompliant')
    assert expected['brand-new-host'] == 'not_in_defender'
    # the gate: one failed task (rc 2) on the controller, naming the hosts that are not compliant
    if noncompliant:
        assert (job.status, job.rc, job.proc_rc) == ('failed', '2', 2), job
        assert '%d of %d hosts are not compliant' % (len(noncompliant), len(hosts)) in job.stdout
        for host in noncompliant:
            assert re.search(r'\b%s \(KB' % re.escape(host), job.stdout), host
    else:
        assert (job.status, job.rc, job.proc_rc) == ('successful', '0', 0), job
    assert len(re.findall(r'^\S+\s+: ok=\d+ .*failed=1 ', job.stdout, re.M)) == int(bool(noncompliant)), job
    assert 'UNREACHABLE' not in job.stdout and 'unreachable=1' not in job.stdout  # no host was contacted


HOOK = ('- name: Record the batch\n  ansible.builtin.lineinfile:\n    path: "{{ hook_log }}"\n'
        '    line: "%s {{ ansible_play_batch | sort | join(\',\') }}"\n    create: true\n    mode: "0644"\n'
        '  delegate_to: localhost\n  run_once: true\n')


def test_patch_under_ansible_runner_finds_hooks_in_the_project_directory(ansible, emulator, tmp_path):
    state_dir = str(tmp_path / 'agents')
    found = sorted(devices(emulator, 2).items())
    hosts = dict((name, host_vars(state_dir, machine)) for name, machine in found)
    log = str(tmp_path / 'hooks.log')
    job = runner_job(ansible, tmp_path, 'patch', hosts, extra_collections=[SIMULATION],
                     project_files={'hooks/pre.yml': HOOK % 'pre', 'hooks/post.yml': HOOK % 'post'},
                     extra_vars={'kb_patching_mode': 'check', 'kb_patching_strategy': 'device', 'kb_patching_serial': '100%',
                                 'kb_patching_fail_on_noncompliance': False, 'hook_log': log,
                                 'kb_patching_pre_batch_tasks': 'hooks/pre.yml', 'kb_patching_post_batch_tasks': 'hooks/post.yml'})
    assert_ran_as_awx_runs_it(job)
    assert (job.status, job.rc, job.proc_rc) == ('successful', '0', 0), job
    with open(log) as handle:
        assert handle.read().split('\n') == ['pre ' + ','.join(sorted(hosts)), 'post ' + ','.join(sorted(hosts)), '']
    assert sorted(os.listdir(os.path.join(job.project, 'reports'))) == sorted(REPORTS)
    assert os.listdir(job.caller) == []
    assert job.report['mode'] == 'check'
    for name, machine in found:
        assert sorted(job.report['hosts'][name]['kbs']) == kb_names(machine)
        assert [c['args'].get('state') for c in calls(state_dir, name)] == ['searched']
