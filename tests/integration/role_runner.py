# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs the collection playbooks (defender.tvm.compliance, defender.tvm.patch) on test inventories."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys

import yaml

from ansible_collections.defender.tvm.tests.integration.conftest import HERE

SIMULATION = os.path.join(HERE, 'collections')

# A Windows host that must never be contacted: WinRM on a closed loopback port.
UNREACHABLE_WINDOWS = {'ansible_connection': 'winrm', 'ansible_host': '127.0.0.1', 'ansible_port': 1,
                       'ansible_user': 'nobody', 'ansible_password': 'never-used'}


class PlaybookRun:
    def __init__(self, proc, report_dir):
        self.rc = proc.returncode
        self.output = proc.stdout + proc.stderr
        self.report_dir = report_dir
        path = os.path.join(report_dir, 'kb_patching.json')
        self.report = None
        if os.path.exists(path):
            with open(path) as handle:
                self.report = json.load(handle)

    def read(self, name):
        with open(os.path.join(self.report_dir, name)) as handle:
            return handle.read()

    def __repr__(self):
        return 'PlaybookRun(rc=%s)\n%s' % (self.rc, self.output[-8000:])


def run_collection_playbook(ansible, playbook, hosts, extra_vars=None, env=None, simulation=False, group='windows',
                            tag='run', verbosity=0, pwd=True):
    """``ansible-playbook defender.tvm.<playbook>`` on an inventory of ``hosts`` (name -> vars); a
    ``playbook`` ending in ``.yml`` is a test playbook of tests/integration/playbooks instead."""
    tmp = ansible.tmp_path
    inventory = str(tmp / ('%s.inventory.yml' % tag))
    with open(inventory, 'w') as handle:
        yaml.safe_dump({'all': {'children': {group: {'hosts': hosts}}}}, handle)
    report_dir = str(tmp / ('%s-reports' % tag))
    variables = {'kb_patching_report_dir': report_dir}
    variables.update(extra_vars or {})
    vars_file = str(tmp / ('%s.vars.json' % tag))
    with open(vars_file, 'w') as handle:
        json.dump(variables, handle)
    # The simulated win_updates must shadow the real ansible.windows.
    base = ansible.env(env, extra_collections=[SIMULATION] if simulation else [], pwd=pwd)
    target = os.path.join(HERE, 'playbooks', playbook) if playbook.endswith('.yml') else 'defender.tvm.%s' % playbook
    command = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', inventory,
               target, '-e', '@' + vars_file] + (['-' + 'v' * verbosity] if verbosity else [])
    proc = subprocess.run(command, env=base, cwd=str(tmp), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=900, check=False)
    return PlaybookRun(proc, report_dir)
