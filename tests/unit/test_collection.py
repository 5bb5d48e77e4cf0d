# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Collection-level invariants: the action group is complete, versions agree, docs name permissions."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import os

import yaml

from ansible_collections.defender.tvm.plugins.module_utils._version import COLLECTION_VERSION

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def plugin_names(kind):
    folder = os.path.join(ROOT, 'plugins', kind)
    return sorted(f[:-3] for f in os.listdir(folder) if f.endswith('.py') and not f.startswith('_'))


def documentation(kind, name):
    with open(os.path.join(ROOT, 'plugins', kind, name + '.py')) as handle:
        tree = ast.parse(handle.read())
    docs = dict((node.targets[0].id, node.value.value) for node in tree.body
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in ('DOCUMENTATION', 'EXAMPLES', 'RETURN'))
    return docs


# The application permission each plugin names (the others need Software.Read.All).
# The permission each plugin's documentation names (Software.Read.All unless listed); None: it calls no API.
PERMISSIONS = {'device_missing_kbs_info': 'Vulnerability.Read.All', 'pattern_hosts': None}


def test_every_module_is_in_the_action_group():
    with open(os.path.join(ROOT, 'meta', 'runtime.yml')) as handle:
        runtime = yaml.safe_load(handle)
    assert runtime['action_groups']['all'] == plugin_names('modules')
    assert runtime['requires_ansible'] == '>=2.16.0'


def test_every_module_documents_the_action_group():
    for name in plugin_names('modules'):
        docs = yaml.safe_load(documentation('modules', name)['DOCUMENTATION'])
        # through the attributes fragment of the info modules or the role's actions, or its own action_group
        fragments = docs.get('extends_documentation_fragment', [])
        if 'defender.tvm.attributes.info_module' in fragments or 'defender.tvm.attributes.role_action' in fragments:
            continue
        assert docs['attributes']['action_group']['membership'] == ['defender.tvm.all'], name


def test_galaxy_metadata_has_no_placeholder_links():
    with open(os.path.join(ROOT, 'galaxy.yml')) as handle:
        meta = yaml.safe_load(handle)
    for key in ('repository', 'documentation', 'homepage', 'issues'):
        assert 'example.invalid' not in str(meta.get(key) or ''), key


def test_galaxy_version_matches_the_user_agent_version():
    with open(os.path.join(ROOT, 'galaxy.yml')) as handle:
        assert yaml.safe_load(handle)['version'] == COLLECTION_VERSION


def test_every_plugin_has_docs_examples_return_and_names_its_permission():
    for kind in ('modules', 'lookup'):
        for name in plugin_names(kind):
            docs = documentation(kind, name)
            assert set(docs) == {'DOCUMENTATION', 'EXAMPLES', 'RETURN'}, (kind, name)
            parsed = yaml.safe_load(docs['DOCUMENTATION'])
            assert parsed['version_added'] and parsed['short_description'], (kind, name)
            permission = PERMISSIONS.get(name, 'Software.Read.All')
            assert (permission or 'calls no API') in docs['DOCUMENTATION'], (kind, name)
            assert yaml.safe_load(docs['EXAMPLES']), (kind, name)
            assert yaml.safe_load(docs['RETURN']), (kind, name)
