# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Integration tests: real ansible-playbook runs against the emulator over HTTPS.

Nothing of the collection is stubbed here: the module and the lookup run as Ansible runs them,
and talk to tests/emulator over real sockets with real TLS and the real OAuth flow.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTION_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(COLLECTION_ROOT, 'tests', 'emulator'))

from mde_emulator import Emulator  # noqa: E402 pylint: disable=wrong-import-position
from mde_emulator.ansible_env import playbook_env  # noqa: E402 pylint: disable=wrong-import-position

PLAYBOOKS = os.path.join(HERE, 'playbooks')


def collections_path():
    parts = COLLECTION_ROOT.split(os.sep)
    if parts[-3:-2] != ['ansible_collections']:
        raise RuntimeError('run the tests from the collection layout (scripts/test.sh builds it): %s' % COLLECTION_ROOT)
    return os.sep.join(parts[:-3])


class Run:
    """The outcome of one ansible-playbook run."""

    def __init__(self, proc, out_file):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.output = proc.stdout + proc.stderr
        self.result = None
        if out_file and os.path.exists(out_file):
            with open(out_file) as handle:
                self.result = json.load(handle)

    def __repr__(self):
        return 'Run(rc=%s)\n%s' % (self.rc, self.output[-6000:])


class Ansible:
    """Runs the playbooks of tests/integration/playbooks against an emulator."""

    def __init__(self, emulator, tmp_path):
        self.emulator = emulator
        self.tmp_path = tmp_path

    def credentials(self, client='secret', prefix='MDE_'):
        """Environment variables for one of the emulator's apps, plus its endpoints."""
        return self.emulator.credentials_env(client, prefix)

    def env(self, env=None, extra_collections=(), pwd=True):
        """ansible-playbook's environment (``mde_emulator.ansible_env``) for a run in this test's
        directory, plus ``env`` (default: the secret app's credentials)."""
        base = playbook_env(os.pathsep.join(list(extra_collections) + [collections_path()]), self.tmp_path, pwd)
        base.update(env if env is not None else self.credentials())
        return base

    def run(self, playbook, env=None, extra_vars=None, args=(), verbosity=0, check=False, inventory=None, extra_collections=()):
        """Run a playbook; `inventory` replaces the localhost inventory, `extra_collections` go first on the collections path."""
        out_file = str(self.tmp_path / ('%s.result.json' % playbook))
        if os.path.exists(out_file):
            os.remove(out_file)
        base = self.env(env, extra_collections)
        variables = {'out': out_file}
        variables.update(extra_vars or {})
        # From a file: ansible-playbook -vvvv echoes its command line, which would show any secret.
        vars_file = str(self.tmp_path / ('%s.vars.json' % playbook))
        with open(vars_file, 'w') as handle:
            json.dump(variables, handle)
        command = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'),
                   '-i', inventory or 'localhost,', '-c', 'local', os.path.join(PLAYBOOKS, playbook + '.yml'),
                   '-e', '@' + vars_file] + list(args)
        if verbosity:
            command.append('-' + 'v' * verbosity)
        if check:
            command.append('--check')
        proc = subprocess.run(command, env=base, cwd=str(self.tmp_path), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=600, check=False)
        return Run(proc, out_file)


@pytest.fixture(scope='session')
def emulator(tmp_path_factory):
    with Emulator(str(tmp_path_factory.mktemp('emulator')), seed=1234, extra_software=60, extra_machines=20) as emu:
        yield emu


@pytest.fixture
def ansible(emulator, tmp_path):
    emulator.reset()  # faults back to none, stats cleared, revocations forgotten
    return Ansible(emulator, tmp_path)
