# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""defender.tvm.kb_plan: ask Defender once, on the controller, and plan each host's KBs.

The Defender calls run here, in the worker process, on the shared client (as the lookup's do):
no module is transferred or forked, and every query of the plan shares one token.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.defender.tvm.plugins.module_utils._options import VARIABLE_PREFIX, OptionAdapter
from ansible_collections.defender.tvm.plugins.module_utils._options import argument_spec as shared_argument_spec
from ansible_collections.defender.tvm.plugins.plugin_utils import _kb_patching as kb_patching
from ansible_collections.defender.tvm.plugins.plugin_utils._defender_plugin import defender_client, option_variables
from ansible_collections.defender.tvm.plugins.plugin_utils._inventory import pattern_hosts

display = Display()

DEVICE_NAME_VARIABLE = 'kb_patching_device_name'

PLAN_OPTIONS = dict(
    strategy=dict(type='str', choices=['software', 'device', 'export'], default='software'),
    export_source=dict(type='str', choices=['json', 'files'], default='json'),
    software_ids=dict(type='list', elements='str', default=[]),
    discover=dict(type='bool', default=False),
    discover_vendor=dict(type='str'),
    discover_name=dict(type='str'),
    min_cve_addressed=dict(type='int', default=0),
    include_kbs=dict(type='list', elements='str', default=[]),
    exclude_kbs=dict(type='list', elements='str', default=[]),
    hosts=dict(type='list', elements='str'),
    host_pattern=dict(type='str'),
    device_names=dict(type='dict'),
    previous=dict(type='dict'),
)


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = False  # nothing runs on the target host

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        task_vars = task_vars or {}
        spec = dict(shared_argument_spec(late_binding=True), **PLAN_OPTIONS)
        dummy, args = self.validate_argument_spec(argument_spec=spec)
        if args['min_cve_addressed'] < 0:
            raise AnsibleActionFail('min_cve_addressed must be >= 0, got %d' % args['min_cve_addressed'])
        if args['strategy'] == 'software' and not (args['discover'] or args['software_ids']):
            raise AnsibleActionFail('The software strategy needs software_ids or discover: true '
                                    '(software IDs look like microsoft-_-windows_11).')
        if args['host_pattern'] is not None:
            args['hosts'] = self._pattern_hosts(args['host_pattern'], task_vars)
        hosts = self._device_names(args, task_vars)
        discover = dict(vendor=args['discover_vendor'], name=args['discover_name']) if args['discover'] else None
        query = dict(strategy=args['strategy'], hosts=hosts, software_ids=None if discover else args['software_ids'],
                     discover=discover, min_cve_addressed=args['min_cve_addressed'],
                     include_kbs=args['include_kbs'], exclude_kbs=args['exclude_kbs'], export_source=args['export_source'])
        key = kb_patching.plan_key(**query)
        previous = args['previous']
        if previous and previous.get('key') == key:
            result.update(changed=False, plan=previous, reused=True)
            return result

        adapter = OptionAdapter.from_action(args, self._connection_variables(args, task_vars))
        with defender_client(adapter, display.warning, 'defender.tvm.kb_plan') as client:
            try:
                plan = kb_patching.ask_defender(client, **query)
            except ValueError as exc:
                raise AnsibleActionFail(str(exc))
        plan['key'] = key
        result.update(changed=False, plan=plan, reused=False)
        return result

    def _pattern_hosts(self, pattern, task_vars):
        """The hosts of ``pattern`` within --limit; none is an error: a gate over no host would pass."""
        limit = task_vars.get('ansible_limit')
        hosts = pattern_hosts(self._loader, task_vars.get('groups') or {}, pattern, limit)
        if not hosts:
            raise AnsibleActionFail(
                'The host pattern %s matches no host in the inventory%s: a report or a gate over no host would pass. '
                'Give an inventory (-i) or another pattern (kb_patching_hosts).'
                % (pattern, ' within --limit %s' % limit if limit else ''))
        return hosts

    def _connection_variables(self, args, task_vars):
        """The ansible_mde_* variables: the task's own; with a host pattern (a play on the controller),
        those it lacks from the first host planned for, where a play on the hosts would have read
        them (for example from the windows group's variables)."""
        variables = option_variables(self._templar, task_vars)
        hostvars = task_vars.get('hostvars') or {}
        if args['host_pattern'] is not None and args['hosts'] and args['hosts'][0] in hostvars:
            first = hostvars[args['hosts'][0]]
            for name in first:
                if name.startswith(VARIABLE_PREFIX) and name not in variables:
                    variables[name] = first[name]  # templated as hostvars gives it
        return variables

    @staticmethod
    def _device_names(args, task_vars):
        """Inventory hostname -> the name Defender knows it by, read once per host, in Python."""
        hosts = args['hosts'] if args['hosts'] is not None else task_vars.get('ansible_play_hosts_all') or []
        given = args['device_names'] or {}
        hostvars = task_vars.get('hostvars') or {}
        names = {}
        for host in hosts:
            name, source = given.get(host) or None, 'device_names[%s]' % host
            if name is None and host in hostvars:
                name, source = hostvars[host].get(DEVICE_NAME_VARIABLE), '%s of %s' % (DEVICE_NAME_VARIABLE, host)
            if name is not None and not isinstance(name, str):
                raise AnsibleActionFail('%s must be a string, got %r' % (source, name))
            names[host] = name or host
        return names
