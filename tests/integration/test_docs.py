# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ansible-doc renders every plugin, and each names the permission it needs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import sys

import pytest

from ansible_collections.defender.tvm.tests.integration.conftest import COLLECTION_ROOT, collections_path

PLUGINS = [('module', 'defender.tvm.' + f[:-3]) for f in os.listdir(os.path.join(COLLECTION_ROOT, 'plugins', 'modules'))
           if f.endswith('.py')]
PLUGINS += [('lookup', 'defender.tvm.' + f[:-3]) for f in os.listdir(os.path.join(COLLECTION_ROOT, 'plugins', 'lookup'))
            if f.endswith('.py')]


@pytest.mark.parametrize('kind,name', sorted(PLUGINS))
def test_ansible_doc_renders_and_names_the_permission(kind, name):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_NOCOLOR='1')
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-doc'), '-t', kind, name],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'ERROR' not in proc.stderr and 'WARNING' not in proc.stderr, proc.stderr
    assert 'Software.Read.All' in proc.stdout
    assert 'EXAMPLES' in proc.stdout and 'RETURN VALUES' in proc.stdout
