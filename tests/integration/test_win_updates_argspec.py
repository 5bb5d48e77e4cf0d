# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The argument spec of ansible.windows.win_updates built from the REAL module's documentation
(win_updates_spec.py, which finds the real collection), and the simulation that cannot drift from it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib.util
import os

import pytest

from ansible_collections.defender.tvm.tests.integration.harness import SIMULATION
from ansible_collections.defender.tvm.tests.integration.win_updates_spec import (
    build_argument_spec, real_action_valid_args, real_documentation, validate_win_updates_args, win_updates_argument_spec)

STAND_IN = os.path.join(SIMULATION, 'ansible_collections', 'ansible', 'windows', 'plugins', 'action', 'win_updates.py')


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
