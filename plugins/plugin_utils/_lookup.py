# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Base class for the collection's lookups: the same options and client as the modules.

FOR INTERNAL COLLECTION USE ONLY; the API may change in any release.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleError, AnsibleOptionsError
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

from ansible_collections.defender.tvm.plugins.module_utils._options import VARIABLE_PREFIX, OptionAdapter
from ansible_collections.defender.tvm.plugins.plugin_utils._defender_plugin import defender_client, option_variables

display = Display()


class DefenderLookupBase(LookupBase):
    """Resolve options (kwargs > ansible_mde_* vars > env > ansible.cfg > defaults; see the
    connection doc fragment for the credential), then query."""

    def run_query(self, variables, kwargs, query):
        variables = option_variables(self._templar, variables)
        try:
            self.set_options(var_options=variables, direct=kwargs)
        except AnsibleOptionsError as exc:
            # ansible-core 2.19 keeps the valid choices in help text that a task failure does not show
            help_text = getattr(exc, '_help_text', None)
            raise AnsibleError('%s %s' % (exc.message, help_text) if help_text else str(exc)) from None
        # Given in the call, then as ansible_mde_* variables: these win over the environment.
        adapter = OptionAdapter.from_plugin(self, set(kwargs), set(name[len(VARIABLE_PREFIX):] for name in variables))
        with defender_client(adapter, display.warning,
                             'The %s lookup' % (getattr(self, 'ansible_name', None) or self._load_name)) as client:
            return query(client)
