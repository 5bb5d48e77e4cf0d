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

from ansible_collections.defender.tvm.plugins.plugin_utils import _kb_patching as kb_patching
from ansible_collections.defender.tvm.plugins.plugin_utils._kb_action import QUERY_OPTIONS, KbPatchingAction


class ActionModule(KbPatchingAction):

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._arguments(dict(QUERY_OPTIONS, previous=dict(type='dict')))
        query = self._query(args, task_vars)
        key = kb_patching.plan_key(**query)
        previous = args['previous']
        if previous and previous.get('key') == key:
            result.update(changed=False, plan=previous, reused=True)
            return result
        plan = self._ask_defender(args, task_vars, query, 'defender.tvm.kb_plan')
        plan['key'] = key
        result.update(changed=False, plan=plan, reused=False)
        return result
