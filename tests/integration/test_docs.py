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

from ansible_collections.defender.tvm.tests.integration.harness import COLLECTION_ROOT, collections_path

PLUGINS = [('module', 'defender.tvm.' + f[:-3]) for f in os.listdir(os.path.join(COLLECTION_ROOT, 'plugins', 'modules'))
           if f.endswith('.py')]
PLUGINS += [('lookup', 'defender.tvm.' + f[:-3]) for f in os.listdir(os.path.join(COLLECTION_ROOT, 'plugins', 'lookup'))
            if f.endswith('.py')]
FILTERS = sorted('defender.tvm.' + f[:-4] for f in os.listdir(os.path.join(COLLECTION_ROOT, 'plugins', 'filter'))
                 if f.endswith('.yml'))


def ansible_doc(*args):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_NOCOLOR='1')
    return subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-doc')] + list(args),
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          check=False, timeout=120)


@pytest.mark.parametrize('kind,name', sorted(PLUGINS))
def test_ansible_doc_renders_and_names_the_permission(kind, name):
    proc = ansible_doc('-t', kind, name)
    assert proc.returncode == 0, proc.stderr
    assert 'ERROR' not in proc.stderr and 'WARNING' not in proc.stderr, proc.stderr
    permission = {'defender.tvm.device_missing_kbs_info': 'Vulnerability.Read.All',
                  'defender.tvm.pattern_hosts': 'calls no API'}.get(name, 'Software.Read.All')
    assert permission in proc.stdout
    assert 'EXAMPLES' in proc.stdout and 'RETURN VALUES' in proc.stdout


@pytest.mark.parametrize('name', FILTERS)
def test_every_filter_is_documented(name):
    proc = ansible_doc('-t', 'filter', name)
    assert proc.returncode == 0 and 'ERROR' not in proc.stderr, proc.stderr
    assert 'EXAMPLES' in proc.stdout


def test_the_role_documents_its_arguments():
    proc = ansible_doc('-t', 'role', 'defender.tvm.kb_patching')
    assert proc.returncode == 0, proc.stderr
    for name in ('kb_patching_mode', 'kb_patching_strategy', 'kb_patching_report_formats', 'Software.Read.All'):
        assert name in proc.stdout


def test_the_renderers_old_names_still_work_with_a_deprecation(ansible):
    run = ansible.run('renderer_names', env={})
    assert run.rc == 0, run
    assert run.result['old'] == run.result['new'] and run.result['new'][2].lstrip().startswith('<!DOCTYPE html>')
    for old in ('kb_report_junit', 'kb_report_markdown', 'kb_report_html'):
        assert 'defender.tvm.%s" has been deprecated. Use defender.tvm.kb_patching_report_%s' % (
            old, old.rsplit('_', 1)[1]) in ' '.join(run.output.split()), run
