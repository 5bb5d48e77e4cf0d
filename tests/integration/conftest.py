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

PLAYBOOKS = os.path.join(HERE, 'playbooks')
# The variables a test must set itself: none may leak in from the machine running the tests.
_SCRUBBED_PREFIXES = ('MDE_', 'AZURE_', 'ANSIBLE_')
_SCRUBBED = ('HTTPS_PROXY', 'HTTP_PROXY', 'https_proxy', 'http_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy')


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
        app = self.emulator.clients[client]
        env = {prefix + 'TENANT_ID': self.emulator.tenant_id, prefix + 'CLIENT_ID': app['client_id'],
               'MDE_API_URL': self.emulator.url, 'MDE_AUTHORITY_URL': self.emulator.url,
               'MDE_CA_PATH': self.emulator.ca_path}
        if app['kind'] == 'secret':
            env[prefix + 'CLIENT_SECRET'] = app['client_secret']
        elif app['kind'] == 'certificate':
            env[prefix + 'CLIENT_CERTIFICATE_PATH'] = app['certificate_path']
        elif app['kind'] == 'federated':
            env[prefix + 'FEDERATED_TOKEN_FILE'] = app['token_file']
        return env

    def env(self, env=None, extra_collections=(), pwd=True):
        """ansible-playbook's environment: this machine's, without MDE_/AZURE_/ANSIBLE_ and proxy
        variables, plus test settings and ``env`` (default: the secret app's credentials).

        The machine's REQUESTS_CA_BUNDLE stays: ca_path must win over it. ``PWD`` is the run's
        directory, as a shell would set it (``pwd=False``: unset, as some runners leave it).
        """
        base = dict((k, v) for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES) and k not in _SCRUBBED)
        base.pop('PWD', None)
        base.update({
            'ANSIBLE_COLLECTIONS_PATH': os.pathsep.join(list(extra_collections) + [collections_path()]),
            'ANSIBLE_PYTHON_INTERPRETER': sys.executable,
            'ANSIBLE_NOCOLOR': '1',
            'ANSIBLE_LOCALHOST_WARNING': '0',
            'ANSIBLE_INVENTORY_UNPARSED_WARNING': '0',
            'ANSIBLE_RETRY_FILES_ENABLED': '0',
            'ANSIBLE_HOST_KEY_CHECKING': '0',
            'ANSIBLE_LOCAL_TEMP': str(self.tmp_path / 'ansible-tmp'),
            'ANSIBLE_HOME': str(self.tmp_path / 'ansible-home'),
        })
        if pwd:
            base['PWD'] = str(self.tmp_path)
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
