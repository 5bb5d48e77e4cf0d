# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one ansible-playbook runner of the integration tests, and the paths they share.

Every test that starts ansible-playbook starts it with ``Ansible.playbook``: the test playbooks of
tests/integration/playbooks (``Ansible.run``), the collection playbooks (``run_collection_playbook``),
the plugins' EXAMPLES (test_examples.py) and the README's quick start. Each run gets the scrubbed
environment of ``mde_emulator.ansible_env.playbook_env`` (collections from the layout the tests run
from, temporary files in the test's own directory), its extra variables from a file (never on the
command line: ``-vvvv`` echoes it, which would show any secret) and a timeout.

ansible-rulebook runs start with ``start_rulebook`` and are waited on with ``wait_for``.

Importing this module puts tests/emulator on ``sys.path`` (for ``mde_emulator``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTION_ROOT = os.path.dirname(os.path.dirname(HERE))
EMULATOR_DIR = os.path.join(COLLECTION_ROOT, 'tests', 'emulator')
if EMULATOR_DIR not in sys.path:
    sys.path.insert(0, EMULATOR_DIR)

from mde_emulator.ansible_env import playbook_env  # noqa: E402 pylint: disable=wrong-import-position

PLAYBOOKS = os.path.join(HERE, 'playbooks')
# A collections path whose ansible.windows is the test-only win_updates simulation: first on the
# collections path, it shadows the real ansible.windows.
SIMULATION = os.path.join(HERE, 'collections')
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
ANSIBLE_INVENTORY = os.path.join(os.path.dirname(sys.executable), 'ansible-inventory')
ANSIBLE_RULEBOOK = os.path.join(os.path.dirname(sys.executable), 'ansible-rulebook')

# A Windows host that must never be contacted: WinRM on a closed loopback port.
UNREACHABLE_WINDOWS = {'ansible_connection': 'winrm', 'ansible_host': '127.0.0.1', 'ansible_port': 1,
                       'ansible_user': 'nobody', 'ansible_password': 'never-used'}

TIMEOUT = 600  # seconds for one ansible-playbook run; a collection playbook's gets COLLECTION_TIMEOUT
COLLECTION_TIMEOUT = 900
RULEBOOK_DEADLINE = 240  # seconds for what an ansible-rulebook run waits for (a JVM starts; each playbook ~2 s)


def collections_path():
    """The collections path the tests run from: the directory holding ansible_collections/defender/tvm."""
    parts = COLLECTION_ROOT.split(os.sep)
    if parts[-3:-2] != ['ansible_collections']:
        raise RuntimeError('run the tests from the collection layout (scripts/test.sh builds it): %s' % COLLECTION_ROOT)
    return os.sep.join(parts[:-3])


def _load_json(path):
    if path and os.path.exists(path):
        with open(path) as handle:
            return json.load(handle)
    return None


class PlaybookRun:
    """The outcome of one ansible-playbook run.

    ``result``: what the playbook saved to ``{{ out }}`` (``out_file``), None when it saved nothing.
    ``report``: with a report dir (``report_dir``), the kb_patching role's JSON report written
    there, None when there is none; ``read(name)`` reads another file of that directory.
    """

    def __init__(self, proc, out_file, report_dir=None):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.output = proc.stdout + proc.stderr
        self.out_file = out_file
        self.result = _load_json(out_file)
        self.report_dir = report_dir
        self.report = _load_json(os.path.join(report_dir, 'kb_patching.json')) if report_dir else None

    def read(self, name):
        """The text of the file ``name`` of the report dir."""
        with open(os.path.join(self.report_dir, name)) as handle:
            return handle.read()

    def __repr__(self):
        return 'PlaybookRun(rc=%s)\n%s' % (self.rc, self.output[-8000:])


class Ansible:
    """Runs ansible-playbook for one test, in its directory (``tmp_path``), against an emulator
    (None for playbooks that never call Defender)."""

    def __init__(self, emulator, tmp_path):
        self.emulator = emulator
        self.tmp_path = tmp_path

    def credentials(self, client='secret', prefix='MDE_'):
        """Environment variables for one of the emulator's apps, plus its endpoints."""
        return self.emulator.credentials_env(client, prefix)

    def env(self, env=None, extra_collections=(), pwd=True):
        """ansible-playbook's environment (``mde_emulator.ansible_env``) for a run in this test's
        directory, plus ``env`` (default: the secret app's credentials; a None value unsets a variable)."""
        base = playbook_env(os.pathsep.join(list(extra_collections) + [collections_path()]), self.tmp_path, pwd)
        for key, value in (env if env is not None else self.credentials()).items():
            if value is None:
                base.pop(key, None)
            else:
                base[key] = value
        return base

    def playbook(self, target, inventory=None, hosts=None, group='windows', extra_vars=None, env=None, args=(),
                 verbosity=0, check=False, extra_collections=(), tag='run', cwd=None, pwd=True, connection=None,
                 report_dir=None, timeout=TIMEOUT):
        """``ansible-playbook target`` (a playbook's path, or a collection playbook's name) as a PlaybookRun.

        inventory: an inventory path or host list; default ``localhost,`` with the local connection.
        hosts: instead, name -> host vars, written to an inventory with them in ``group``.
        connection: ``-c`` (the inventory's own ansible_connection wins over it).
        extra_vars: passed in a vars file, with ``out`` (a file a test playbook may save its result to:
            ``PlaybookRun.result``) and, with a ``report_dir``, ``kb_patching_report_dir``; those given win.
        env: variables added to the environment of ``env()`` (default: the secret app's credentials;
            ``{}``: none; a None value unsets one).
        extra_collections: first on the collections path (SIMULATION: the simulated ansible.windows).
        tag: the prefix of this run's files in the test's directory (<tag>.vars.json, <tag>.result.json,
            <tag>.inventory.yml), which keeps several runs of one test apart.
        cwd: the directory it runs in (default: the test's), also its PWD unless ``pwd`` is False (unset).
        """
        if inventory is not None and hosts is not None:
            raise ValueError('give an inventory or hosts, not both')
        tmp = self.tmp_path
        cwd = str(cwd or tmp)
        if hosts is not None:
            inventory = str(tmp / ('%s.inventory.yml' % tag))
            with open(inventory, 'w') as handle:
                yaml.safe_dump({'all': {'children': {group: {'hosts': hosts}}}}, handle)
        elif inventory is None:
            inventory, connection = 'localhost,', connection or 'local'
        out_file = str(tmp / ('%s.result.json' % tag))
        if os.path.exists(out_file):
            os.remove(out_file)
        variables = {'out': out_file}
        if report_dir:
            variables['kb_patching_report_dir'] = report_dir
        variables.update(extra_vars or {})
        vars_file = str(tmp / ('%s.vars.json' % tag))
        with open(vars_file, 'w') as handle:
            json.dump(variables, handle)
        base = self.env(env, extra_collections, pwd)
        if pwd:
            base['PWD'] = cwd
        command = [ANSIBLE_PLAYBOOK, '-i', str(inventory)] + (['-c', connection] if connection else [])
        command += [target, '-e', '@' + vars_file] + list(args)
        if verbosity:
            command.append('-' + 'v' * verbosity)
        if check:
            command.append('--check')
        proc = subprocess.run(command, env=base, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=timeout, check=False)
        return PlaybookRun(proc, out_file, report_dir)

    def inventory(self, config, args=('--list',), env=None, verbosity=0, name='test.defender_devices.yml',
                  timeout=TIMEOUT):
        """``ansible-inventory -i <name> <args>`` with ``config`` (a dict, or YAML text) as the inventory
        file ``name`` in the test's directory; the completed process, with ``inventory`` (the parsed
        JSON of ``--list``, else None) and ``output``."""
        path = str(self.tmp_path / name)
        with open(path, 'w') as handle:
            handle.write(config if isinstance(config, str) else yaml.safe_dump(config))
        command = [ANSIBLE_INVENTORY, '-i', path] + list(args) + (['-' + 'v' * verbosity] if verbosity else [])
        proc = subprocess.run(command, env=self.env(env), cwd=str(self.tmp_path), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout, check=False)
        proc.output = proc.stdout + proc.stderr
        proc.inventory = None
        if proc.returncode == 0 and '--list' in args:
            # with -v..., verbose lines come first on stdout; the JSON starts with a line of its own
            start = re.search(r'^\{$', proc.stdout, re.M)
            proc.inventory = json.loads(proc.stdout[start.start():]) if start else None
        return proc

    def run(self, playbook, **options):
        """The test playbook ``playbook`` of tests/integration/playbooks (its name, without .yml), with
        the local connection; ``options`` as for ``playbook()`` (its files are tagged with its name)."""
        options.setdefault('tag', playbook)
        options.setdefault('connection', 'local')
        return self.playbook(os.path.join(PLAYBOOKS, playbook + '.yml'), **options)


def run_collection_playbook(ansible, playbook, hosts, extra_vars=None, env=None, simulation=False, group='windows',
                            tag='run', verbosity=0, pwd=True, args=(), check=False):
    """``ansible-playbook defender.tvm.<playbook>`` on an inventory of ``hosts`` (name -> vars) in
    ``group``, with its reports in <tag>-reports (``PlaybookRun.report``, ``read()``); a ``playbook``
    ending in ``.yml`` is a test playbook of tests/integration/playbooks instead. ``simulation``: the
    simulated ansible.windows (SIMULATION) shadows the real one. ``args`` (such as ``-l``) and ``check``
    (``--check``) as for ``Ansible.playbook``."""
    target = os.path.join(PLAYBOOKS, playbook) if playbook.endswith('.yml') else 'defender.tvm.%s' % playbook
    return ansible.playbook(target, hosts=hosts, group=group, extra_vars=extra_vars, env=env, verbosity=verbosity,
                            extra_collections=[SIMULATION] if simulation else [], tag=tag, pwd=pwd,
                            report_dir=str(ansible.tmp_path / ('%s-reports' % tag)), timeout=COLLECTION_TIMEOUT,
                            args=args, check=check)


def start_rulebook(emulator, tmp_path, inventory, rulebook, args=(), extra_collections=()):
    """``ansible-rulebook -i inventory --rulebook rulebook -v args`` in ``tmp_path``, started (a Popen
    whose stdout holds stderr too), with the secret app's MDE_* variables, the collections of
    ``Ansible.env`` (``extra_collections`` first), its checkpoints in ``tmp_path``/state
    (XDG_STATE_HOME) and the venv's commands (ansible-playbook) on PATH."""
    env = Ansible(emulator, tmp_path).env(emulator.credentials_env('secret'), extra_collections=extra_collections)
    env.update(PATH=os.path.dirname(sys.executable) + os.pathsep + env.get('PATH', ''),
               XDG_STATE_HOME=str(tmp_path / 'state'))
    return subprocess.Popen(  # pylint: disable=consider-using-with
        [ANSIBLE_RULEBOOK, '-i', str(inventory), '--rulebook', str(rulebook), '-v'] + list(args),
        env=env, cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)


def wait_for(what, condition, process):
    """``condition()`` true within RULEBOOK_DEADLINE seconds, while ``process`` runs; else the test fails."""
    deadline = time.monotonic() + RULEBOOK_DEADLINE
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            pytest.fail('ansible-rulebook ended before %s:\n%s' % (what, process.stdout.read()[-6000:]))
        time.sleep(0.2)  # polling for the condition, not waiting a fixed time for it
    pytest.fail('no %s within %d s' % (what, RULEBOOK_DEADLINE))


def terminate(process):
    """Stop a rulebook that runs until stopped (SIGTERM) and return its output."""
    process.send_signal(signal.SIGTERM)
    output, dummy = process.communicate(timeout=RULEBOOK_DEADLINE)
    return output
