# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the kb_patching role's actions (defender.tvm.kb_plan, defender.tvm.kb_report) share: the
question they ask Defender, the hosts and their device names, and the connection options.

FOR INTERNAL COLLECTION USE ONLY; the API may change in any release.
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

# The question (doc fragment defender.tvm.kb_query).
QUERY_OPTIONS = dict(
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
)


def _is_template(value):
    return isinstance(value, str) and ('{{' in value or '{%' in value)


class KbPatchingAction(ActionBase):
    """An action of the kb_patching role: it runs on the controller and never uses its connection."""

    TRANSFERS_FILES = False
    _requires_connection = False  # nothing runs on the target host

    def _arguments(self, options):
        """The task's arguments, checked and converted: the connection options and ``options``."""
        dummy, args = self.validate_argument_spec(argument_spec=dict(shared_argument_spec(late_binding=True), **options))
        return args

    def _query(self, args, task_vars):
        """The question for ``kb_patching.ask_defender`` (and ``plan_key``), from the arguments:
        checked, and with each host's device name read."""
        if args['min_cve_addressed'] < 0:
            raise AnsibleActionFail('min_cve_addressed must be >= 0, got %d' % args['min_cve_addressed'])
        if args['strategy'] == 'software' and not (args['discover'] or args['software_ids']):
            raise AnsibleActionFail('The software strategy needs software_ids or discover: true '
                                    '(software IDs look like microsoft-_-windows_11).')
        if args['host_pattern'] is not None:
            args['hosts'] = self._pattern_hosts(args['host_pattern'], task_vars)
        discover = dict(vendor=args['discover_vendor'], name=args['discover_name']) if args['discover'] else None
        return dict(strategy=args['strategy'], hosts=self._device_names(args, task_vars),
                    software_ids=None if discover else args['software_ids'], discover=discover,
                    min_cve_addressed=args['min_cve_addressed'], include_kbs=args['include_kbs'],
                    exclude_kbs=args['exclude_kbs'], export_source=args['export_source'])

    def _ask_defender(self, args, task_vars, query, plugin_name):
        """The plan: Defender asked on one client (one token)."""
        adapter = OptionAdapter.from_action(args, self._connection_variables(args, task_vars))
        with defender_client(adapter, display.warning, plugin_name) as client:
            try:
                return kb_patching.ask_defender(client, **query)
            except ValueError as exc:
                raise AnsibleActionFail(str(exc))

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
        """Inventory hostname -> the name Defender knows it by, read once per host, in Python.

        Each host's variables are read untemplated (``hostvars.raw_get``: no template engine per
        host, which counts at 100,000 hosts); only a value that is a template is read templated.
        """
        hosts = args['hosts'] if args['hosts'] is not None else task_vars.get('ansible_play_hosts_all') or []
        given = args['device_names'] or {}
        hostvars = task_vars.get('hostvars') or {}
        raw_get = getattr(hostvars, 'raw_get', None)
        names = {}
        for host in hosts:
            name, source = given.get(host) or None, 'device_names[%s]' % host
            if name is None and host in hostvars:
                source = '%s of %s' % (DEVICE_NAME_VARIABLE, host)
                variables = raw_get(host) if raw_get is not None else hostvars[host]
                name = variables.get(DEVICE_NAME_VARIABLE) if hasattr(variables, 'get') else None
                if _is_template(name):
                    name = hostvars[host].get(DEVICE_NAME_VARIABLE)
            if name is not None and not isinstance(name, str):
                raise AnsibleActionFail('%s must be a string, got %r' % (source, name))
            names[host] = name or host
        return names
