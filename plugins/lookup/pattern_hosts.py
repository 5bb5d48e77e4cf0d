# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: pattern_hosts
short_description: The hosts a play on a host pattern would run on, with --limit applied
version_added: 2.0.0
description:
  - Returns the inventory hostnames that a host pattern matches within the run's C(--limit)
    (C(ansible_limit)), in inventory order - the hosts a play with that pattern would run on.
  - Like P(ansible.builtin.inventory_hostnames#lookup), which ignores C(--limit). Used by the
    C(defender.tvm.compliance) and C(defender.tvm.patch) playbooks to refuse a run whose hosts
    are none, and by the C(defender.tvm.kb_patching) role to report on a pattern from a play on
    the controller.
  - Reads the inventory only; it calls no API and needs no permission.
author:
  - defender.tvm maintainers (@defender-tvm)
options:
  _terms:
    description: Host patterns (groups, host names, wildcards, C(~regex), C(:!) and C(:&)); several are joined.
    required: true
    type: list
    elements: str
'''

EXAMPLES = r'''
- name: Refuse a run that would patch nothing
  ansible.builtin.assert:
    that: query('defender.tvm.pattern_hosts', 'windows') | length > 0
    fail_msg: The pattern windows matches no host within --limit.
'''

RETURN = r'''
_raw:
  description: The inventory hostnames, in inventory order.
  type: list
  elements: str
'''

from ansible.plugins.lookup import LookupBase

from ansible_collections.defender.tvm.plugins.plugin_utils._inventory import pattern_hosts


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        variables = variables or {}
        return pattern_hosts(self._loader, variables.get('groups') or {}, list(terms), variables.get('ansible_limit'))
