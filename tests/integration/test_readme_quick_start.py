# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The README's quick start: the controller's Python needs requirements.txt, and an inventory that
names localhost must give it Ansible's own Python, as the README says."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import subprocess
import sys

import pytest

from ansible_collections.defender.tvm.tests.integration.harness import COLLECTION_ROOT, PLAYBOOKS


def readme_localhost_line():
    with open(os.path.join(COLLECTION_ROOT, 'README.md')) as handle:
        readme = handle.read()
    quick_start = readme.split('## Quick start', 1)[1].split('\n## ', 1)[0]
    text = ' '.join(quick_start.replace('**', '').split())
    assert 'pip install -r requirements.txt' in text and 'the Python that runs Ansible' in text
    blocks = re.findall(r'```ini\n(.*?)```', quick_start, re.S)
    assert len(blocks) == 1, 'the quick start shows one inventory line for localhost'
    return blocks[0].strip()


@pytest.fixture(scope='module')
def python_without_requirements(tmp_path_factory):
    """A Python without requests or msal, such as the one interpreter discovery may pick."""
    venv = tmp_path_factory.mktemp('bare-python')
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True)
    python = os.path.join(str(venv), 'bin', 'python')
    assert subprocess.run([python, '-c', 'import requests'], stderr=subprocess.DEVNULL, check=False).returncode != 0
    return python


@pytest.mark.parametrize('documented', [False, True], ids=['inventory names localhost', 'with the README line'])
def test_an_inventory_that_names_localhost_needs_the_readme_line(ansible, emulator, python_without_requirements,
                                                                 documented):
    inventory = ansible.tmp_path / 'inventory.ini'
    line = readme_localhost_line() if documented else 'localhost ansible_connection=local'
    # the interpreter Ansible would otherwise use for a localhost it finds in the inventory
    inventory.write_text(u'%s\n\n[all:vars]\nansible_python_interpreter=%s\n' % (line, python_without_requirements))
    # the secret app's credentials, and no ANSIBLE_PYTHON_INTERPRETER: the inventory decides
    env = dict(ansible.credentials(), ANSIBLE_PYTHON_INTERPRETER=None)
    run = ansible.playbook(os.path.join(PLAYBOOKS, 'module.yml'), inventory=str(inventory), env=env,
                           extra_vars={'software_ids': ['microsoft-_-windows_11']}, tag='quick-start', timeout=300)
    with open(run.out_file) as handle:
        result = handle.read()
    if documented:
        assert run.rc == 0 and '"failed": true' not in result, run
        assert emulator.stats()['api_requests'] == 1
    else:
        # the trap the README warns of: a clear message naming the library and the interpreter
        assert 'Failed to import the required Python library (requests)' in result, result
        assert python_without_requirements in result
        assert emulator.stats()['api_requests'] == 0
