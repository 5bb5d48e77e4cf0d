# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The arguments of ansible.windows.win_updates, from the REAL module's documentation.

`validate_win_updates_args(args)` checks a set of task arguments against the argument spec built
from the real module's DOCUMENTATION (ansible.windows as scripts/setup.sh extracts it), so tests can
check what the kb_patching role passes, e.g. each line of the simulation's
<state dir>/<host>.calls.jsonl: ``validate_win_updates_args(json.loads(line)['args'])``.

The real collection is found through DEFENDER_TVM_WINDOWS_COLLECTION (a collections path holding
ansible_collections/ansible/windows, or that collection's own directory), else in the repository's
.work/ansible_windows when the tests run from the repository or from its .work/collections mirror.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import copy
import importlib.util
import os

import pytest
import yaml

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTION_ROOT = os.path.dirname(os.path.dirname(HERE))
STAND_IN = os.path.join(HERE, 'collections', 'ansible_collections', 'ansible', 'windows', 'plugins', 'action', 'win_updates.py')
ENV_VAR = 'DEFENDER_TVM_WINDOWS_COLLECTION'
WINDOWS = os.path.join('ansible_collections', 'ansible', 'windows')
# Keys of a documented option that are argument spec keys too.
SPEC_KEYS = ('type', 'elements', 'choices', 'default', 'aliases', 'required')


def real_collection():
    """The directory of the real ansible.windows collection (not the simulation)."""
    candidates = []
    if os.environ.get(ENV_VAR):
        candidates += [os.environ[ENV_VAR], os.path.join(os.environ[ENV_VAR], WINDOWS)]
    # Running from the repository itself, or from the mirror scripts/test.sh keeps in <repo>/.work/collections.
    for repo in (COLLECTION_ROOT, os.path.normpath(os.path.join(COLLECTION_ROOT, '..', '..', '..', '..', '..'))):
        candidates.append(os.path.join(repo, '.work', 'ansible_windows', WINDOWS))
    for candidate in candidates:
        if os.path.isfile(os.path.join(candidate, 'plugins', 'modules', 'win_updates.py')):
            return candidate
    raise RuntimeError('the real ansible.windows collection was not found (tried %s): run scripts/setup.sh, and set %s to '
                       '<repo>/.work/ansible_windows when the tests run from a mirror outside the repository' % (candidates, ENV_VAR))


def python_constants(path, names):
    """Top-level constants of a Python file, read without importing it (it belongs to another collection)."""
    with open(path) as handle:
        tree = ast.parse(handle.read())
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) and node.targets[0].id in names:
            found[node.targets[0].id] = ast.literal_eval(node.value)
    return found


def real_documentation():
    path = os.path.join(real_collection(), 'plugins', 'modules', 'win_updates.py')
    return yaml.safe_load(python_constants(path, ('DOCUMENTATION',))['DOCUMENTATION'])


def real_action_valid_args():
    path = os.path.join(real_collection(), 'plugins', 'action', 'win_updates.py')
    return set(python_constants(path, ('_VALID_ARGS',))['_VALID_ARGS'])


def build_argument_spec(documentation, internal=False):
    """An ArgumentSpecValidator spec from documented options (type defaults to str, as ansible-doc reads it).

    The internal options (_operation, _operation_options) are left out unless asked for: the real action plugin sets
    them itself and rejects them from a task.
    """
    spec = {}
    for name, option in documentation['options'].items():
        if name.startswith('_') and not internal:
            continue
        entry = dict((key, copy.deepcopy(option[key])) for key in SPEC_KEYS if key in option)
        entry.setdefault('type', 'str')
        spec[name] = entry
    return spec


_SPEC = []


def win_updates_argument_spec():
    """The user-facing argument spec of the real ansible.windows.win_updates (built once)."""
    if not _SPEC:
        _SPEC.append(build_argument_spec(real_documentation()))
    return copy.deepcopy(_SPEC[0])


def validate_win_updates_args(args):
    """Error messages for task arguments the real ansible.windows.win_updates would refuse ([] when it takes them)."""
    result = ArgumentSpecValidator(win_updates_argument_spec()).validate(copy.deepcopy(dict(args)))
    return list(result.error_messages)


def load_stand_in():
    spec = importlib.util.spec_from_file_location('win_updates_simulation_argspec', STAND_IN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the helper ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize('args', [
    {},
    {'state': 'searched'},
    {'category_names': '*', 'state': 'searched', 'server_selection': 'windows_update'},
    {'category_names': ['SecurityUpdates', 'Critical Updates'], 'accept_list': [r'KB5034123(?!\d)'], 'reject_list': ['Preview'],
     'skip_optional': True, 'reboot': True, 'reboot_timeout': 3600, 'state': 'installed', 'log_path': 'C:\\ansible_wu.txt'},
    {'accept_list': 'KB5034123', 'reboot': 'yes', 'reboot_timeout': '1200'},       # converted as a module would
    {'state': 'downloaded', 'server_selection': 'managed_server'},
])
def test_valid_arguments_are_accepted(args):
    assert validate_win_updates_args(args) == []


@pytest.mark.parametrize('args,fragment', [
    ({'whitelist': ['KB1']}, 'whitelist'),                  # removed alias (2.0.0)
    ({'category_name': ['SecurityUpdates']}, 'category_name'),  # the old docs typo (#468)
    ({'_operation': 'start'}, '_operation'),                # internal: the action plugin rejects it
    ({'state': 'present'}, 'state'),
    ({'server_selection': 'wsus'}, 'server_selection'),
    ({'reboot': 'sometimes'}, 'reboot'),
    ({'reboot_timeout': 'an hour'}, 'reboot_timeout'),
    ({'category_names': {'name': 'SecurityUpdates'}}, 'category_names'),
    ({'skip_optional': [True]}, 'skip_optional'),
])
def test_bad_arguments_are_rejected(args, fragment):
    errors = validate_win_updates_args(args)
    assert errors and any(fragment in error for error in errors), errors


def test_the_spec_comes_from_the_documentation():
    spec = win_updates_argument_spec()
    assert spec['category_names'] == {'type': 'list', 'elements': 'str', 'default': ['CriticalUpdates', 'SecurityUpdates', 'UpdateRollups']}
    assert spec['state'] == {'type': 'str', 'choices': ['installed', 'searched', 'downloaded'], 'default': 'installed'}
    assert spec['reboot_timeout'] == {'type': 'int', 'default': 1200}
    assert set(build_argument_spec(real_documentation(), internal=True)) - set(spec) == {'_operation', '_operation_options'}


# --- the simulation cannot drift from the real module ----------------------------------------------------------------


def test_the_stand_in_accepts_exactly_the_real_options():
    stand_in = load_stand_in()
    real_options = set(win_updates_argument_spec())
    assert set(stand_in.ActionModule._VALID_ARGS) == real_options
    assert real_action_valid_args() == real_options


def test_the_stand_in_validates_as_the_real_module_documents():
    assert load_stand_in().ARGUMENT_SPEC == win_updates_argument_spec()
