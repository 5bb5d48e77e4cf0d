# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The filters of the defender.tvm.kb_patching role, one family: its arguments, the plan, per-host
outcomes, the report dict and its renderers (JUnit, Markdown, HTML), the gate message.

Several filters share this file, so their documentation lives in sidecar files (kb_patching_*.yml).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.defender.tvm.plugins.module_utils._errors import DefenderError
from ansible_collections.defender.tvm.plugins.plugin_utils import _kb_patching as kb_patching
from ansible_collections.defender.tvm.plugins.plugin_utils._kb_report import render_html, render_junit, render_markdown


def _wrap(func):
    def run(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (KeyError, TypeError, ValueError, DefenderError) as exc:
            raise AnsibleFilterError('%s: %s' % (func.__name__, exc))
    return run


def _plain(value):
    """``value`` as plain dicts and lists. ansible-core 2.19 hands filters lazy containers that
    carry the whole template context (every variable, the inventory's groups): the validator's
    deep copy would copy all of it, minutes at 100,000 hosts."""
    if isinstance(value, Mapping):
        return dict((key, _plain(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def kb_patching_arguments(values, spec):
    return kb_patching.role_arguments(_plain(values), _plain(spec))


def kb_patching_plan(missing, strategy, hosts, software=None, min_cve_addressed=0, include_kbs=None, exclude_kbs=None,
                     devices=None):
    return kb_patching.build_plan(strategy, hosts, missing, software, min_cve_addressed, include_kbs, exclude_kbs,
                                  devices)


def kb_patching_outcomes(kbs, mode, search=None, install=None, verify=None):
    return kb_patching.host_outcomes(kbs, mode, search, install, verify)


def kb_patching_report(plan, outcomes, mode, generated, filters=None, failed_hosts=None, hostvars=None, hosts=None,
                       check_mode=False):
    if hostvars is not None and not outcomes and mode != 'report':
        outcomes = kb_patching.outcomes_of(hostvars, hosts or [])
    return kb_patching.build_report(plan, outcomes or {}, mode, generated, filters, failed_hosts, check_mode)


def kb_patching_gate_message(report, host=None, limit=20):
    return kb_patching.gate_message(report, host, limit)


def _renderer(name, render):
    def kb_patching_report_renderer(report):
        # A clear message beats a renderer's AttributeError when a task passes the wrong variable.
        if not isinstance(report, Mapping):
            raise AnsibleFilterError('%s expects the kb_patching report dict, got %s' % (name, type(report).__name__))
        return render(report)
    kb_patching_report_renderer.__name__ = name
    return kb_patching_report_renderer


class FilterModule:
    def filters(self):
        return {
            'kb_patching_arguments': _wrap(kb_patching_arguments),
            'kb_patching_plan': _wrap(kb_patching_plan),
            'kb_patching_outcomes': _wrap(kb_patching_outcomes),
            'kb_patching_report': _wrap(kb_patching_report),
            'kb_patching_gate_message': _wrap(kb_patching_gate_message),
            'kb_patching_report_junit': _renderer('kb_patching_report_junit', render_junit),
            'kb_patching_report_markdown': _renderer('kb_patching_report_markdown', render_markdown),
            'kb_patching_report_html': _renderer('kb_patching_report_html', render_html),
        }
