# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""defender.tvm.kb_report: the kb_patching role's report, built and written on the controller, and
the gate's verdicts.

Everything happens here, in Python: the plan and the outcomes are read from the hosts' variables
as they are, and the report goes to its files, never through a template. At fleet scale that is
the difference between seconds and minutes (ansible-core 2.19 copies and tags every value of a
templated dict), and the task's result stays small.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os

from ansible.errors import AnsibleActionFail

from ansible_collections.defender.tvm.plugins.plugin_utils import _kb_patching as kb_patching
from ansible_collections.defender.tvm.plugins.plugin_utils._kb_action import QUERY_OPTIONS, KbPatchingAction
from ansible_collections.defender.tvm.plugins.plugin_utils._kb_report import REPORT_FILES, write_reports

PLAN_VARIABLE = 'kb_patching_plan'  # localhost's fact, set by the role after defender.tvm.kb_plan

REPORT_OPTIONS = dict(
    QUERY_OPTIONS,
    mode=dict(type='str', choices=['report', 'check', 'install'], required=True),
    dry_run=dict(type='bool', default=False),
    report_dir=dict(type='path', required=True),
    formats=dict(type='list', elements='str', choices=[name for name, dummy, dummy2 in REPORT_FILES],
                 default=[name for name, dummy, dummy2 in REPORT_FILES]),
    gate=dict(type='str', choices=['hosts', 'once', 'none'], default='hosts'),
)


class ActionModule(KbPatchingAction):

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._arguments(REPORT_OPTIONS)
        if args['mode'] == 'report':
            # Defender's word is the outcome: ask, and report, in one step
            plan = self._ask_defender(args, task_vars, self._query(args, task_vars), 'defender.tvm.kb_report')
            outcomes, failed_hosts = {}, []
        else:
            plan = self._plan(task_vars)
            processed = task_vars.get('ansible_play_hosts_all') or []
            alive = set(task_vars.get('ansible_play_hosts') or [])
            outcomes = kb_patching.outcomes_of(task_vars.get('hostvars') or {}, processed)
            failed_hosts = [host for host in processed if host not in alive]
        filters = dict((name, args[name]) for name in ('min_cve_addressed', 'include_kbs', 'exclude_kbs'))
        generated = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
        report = kb_patching.build_report(plan, outcomes, args['mode'], generated, filters, failed_hosts,
                                          check_mode=args['dry_run'])
        # relative to the directory ansible-playbook runs in, as a user's shell would resolve it
        directory = os.path.realpath(os.path.expanduser(args['report_dir']))
        files, changed = write_reports(report, directory, args['formats'])
        result.update(changed=changed, report_dir=directory, files=files, summary=report['summary'],
                      gate=self._verdicts(report, args['gate']))
        return result

    @staticmethod
    def _plan(task_vars):
        """The plan defender.tvm.kb_plan made, from localhost's facts, as it is (not templated)."""
        hostvars = task_vars.get('hostvars') or {}
        raw_get = getattr(hostvars, 'raw_get', None)
        controller = raw_get('localhost') if raw_get is not None else hostvars.get('localhost') or {}
        plan = controller.get(PLAN_VARIABLE) if hasattr(controller, 'get') else None
        if not isinstance(plan, dict):
            raise AnsibleActionFail('No plan to report on: in check and install mode, run defender.tvm.kb_plan first '
                                    'and keep its plan in localhost\'s %s fact' % PLAN_VARIABLE)
        return plan

    @staticmethod
    def _verdicts(report, gate):
        """What the gate fails: with ``once`` the one message for the fleet (empty: it passes), with
        ``hosts`` a message per failing host, with ``none`` nothing."""
        verdicts = {'mode': gate, 'message': '', 'hosts': {}}
        if gate == 'once':
            verdicts['message'] = kb_patching.gate_message(report)
        elif gate == 'hosts':
            for host in report['hosts']:
                message = kb_patching.gate_message(report, host)
                if message:
                    verdicts['hosts'][host] = message
        return verdicts
