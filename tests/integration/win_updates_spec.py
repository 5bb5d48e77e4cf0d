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
import os

import yaml

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.defender.tvm.tests.integration.harness import COLLECTION_ROOT

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
