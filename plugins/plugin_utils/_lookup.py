# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Base class for the collection's lookups: the same options and client as the modules.

Internal to the collection; the API may change in any release.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleError, AnsibleOptionsError
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

from ansible_collections.defender.tvm.plugins.module_utils import transport
from ansible_collections.defender.tvm.plugins.module_utils.client import DefenderClient
from ansible_collections.defender.tvm.plugins.module_utils.errors import DefenderError
from ansible_collections.defender.tvm.plugins.module_utils.options import OptionAdapter, Settings

display = Display()


class DefenderLookupBase(LookupBase):
    """Resolve options (kwargs > ansible_mde_* vars > env > ansible.cfg > defaults; see the
    connection doc fragment for the credential), then query."""

    VARIABLE_PREFIX = 'ansible_mde_'

    def _option_variables(self, variables):
        """The ansible_mde_* variables, templated: Ansible hands lookups the raw values."""
        return dict((name, self._templar.template(value)) for name, value in (variables or {}).items()
                    if name.startswith(self.VARIABLE_PREFIX))

    def run_query(self, variables, kwargs, query):
        if transport.REQUESTS_IMPORT_ERROR:
            raise AnsibleError("The %s lookup needs the Python library 'requests' on the controller" % self._load_name)
        option_variables = self._option_variables(variables)
        try:
            self.set_options(var_options=option_variables, direct=kwargs)
        except AnsibleOptionsError as exc:
            # ansible-core 2.19 keeps the valid choices in help text that a task failure does not show
            help_text = getattr(exc, '_help_text', None)
            raise AnsibleError('%s %s' % (exc.message, help_text) if help_text else str(exc)) from None
        # Given in the call or as ansible_mde_* variables: these win over the environment.
        explicit = set(kwargs) | set(name[len(self.VARIABLE_PREFIX):] for name in option_variables)
        client = None
        try:
            client = DefenderClient(Settings.from_adapter(OptionAdapter.from_plugin(self, explicit)), warn=display.warning)
            return query(client)
        except DefenderError as exc:
            # No chained exception: Ansible would print it, and lookups get no no_log masking.
            raise AnsibleError(str(exc)) from None
        finally:
            if client is not None:
                client.close()
