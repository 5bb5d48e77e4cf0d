# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters behind the defender.tvm.kb_patching role: its arguments, plan, per-host outcomes, report dict, gate message."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.defender.tvm.plugins.plugin_utils import kb_patching


def _wrap(func):
    def run(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (KeyError, TypeError, ValueError) as exc:
            raise AnsibleFilterError('%s: %s' % (func.__name__, exc))
    return run


def kb_patching_arguments(values, spec):
    return kb_patching.role_arguments(values, spec)


def kb_patching_plan(missing, strategy, hosts, software=None, min_cve_addressed=0, include_kbs=None, exclude_kbs=None,
                     devices=None):
    return kb_patching.build_plan(strategy, hosts, missing, software, min_cve_addressed, include_kbs, exclude_kbs,
                                  devices)


def kb_patching_outcomes(kbs, mode, search=None, install=None, verify=None):
    return kb_patching.host_outcomes(kbs, mode, search, install, verify)


def kb_patching_report(plan, outcomes, mode, generated, filters=None, failed_hosts=None):
    return kb_patching.build_report(plan, outcomes, mode, generated, filters, failed_hosts)


def kb_patching_gate_message(report, host=None, limit=20):
    return kb_patching.gate_message(report, host, limit)


class FilterModule:
    def filters(self):
        return {
            'kb_patching_arguments': _wrap(kb_patching_arguments),
            'kb_patching_plan': _wrap(kb_patching_plan),
            'kb_patching_outcomes': _wrap(kb_patching_outcomes),
            'kb_patching_report': _wrap(kb_patching_report),
            'kb_patching_gate_message': _wrap(kb_patching_gate_message),
        }
