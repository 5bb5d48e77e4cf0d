#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# The work is done by the action plugin of the same name (plugins/action/kb_report.py), on the
# controller; this file holds its documentation only, as for ansible.builtin.set_fact.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: kb_report
short_description: Write the kb_patching report and work out what its gate fails
version_added: 2.0.0
description:
  - The report step of the C(defender.tvm.kb_patching) role - builds the report (the mode, strategy,
    each host's status and KB outcomes, each KB's details and counts; see the role's README) and
    writes it as JSON, JUnit, Markdown and HTML into O(report_dir), on the controller; returns its
    RV(summary) and what the role's gate fails (RV(gate)).
  - In V(report) mode it asks Defender itself, exactly as M(defender.tvm.kb_plan) does with the same
    options (Defender's word is then each KB's outcome), for the play's hosts or those of
    O(host_pattern) - so that a play on the controller reports on a whole fleet in one task.
  - In V(check) and V(install) mode it reads the plan M(defender.tvm.kb_plan) made from the
    C(kb_patching_plan) fact of C(localhost), and each processed host's C(kb_patching_outcome)
    (the hosts of the play so far, so that with serial batches the last batch's report is
    complete); a host that failed before it had outcomes counts as failed.
  - Everything runs in the action, in Python - the plan and the report never go through a template,
    which at fleet scale is the difference between seconds and minutes.
  - Requires, in V(report) mode, the permissions M(defender.tvm.kb_plan) needs (C(Software.Read.All),
    and C(Machine.Read.All) or C(Vulnerability.Read.All) for its V(device) and V(export) strategies).
author:
  - defender.tvm maintainers (@defender-tvm)
options:
  mode:
    description: The role's mode - V(report) (Defender's view), V(check) or V(install).
    type: str
    choices: [report, check, install]
    required: true
  dry_run:
    description:
      - The run is a dry run (C(--check)) of V(install) - the hosts were searched, nothing was
        installed, and V(missing) is what would be installed. Kept in the report as C(check_mode);
        the gate then fails only hosts with a V(failed) KB (a search that failed).
    type: bool
    default: false
  report_dir:
    description:
      - Where the reports go (created when missing). A relative path is relative to the working
        directory of the C(ansible-playbook) process.
    type: path
    required: true
  formats:
    description: Which reports to write - C(kb_patching.json), C(.junit.xml), C(.md), C(.html).
    type: list
    elements: str
    choices: [json, junit, markdown, html]
    default: [json, junit, markdown, html]
  gate:
    description:
      - Which verdicts to work out for the role's gate - V(hosts) a message per failing host, V(once)
        one message for the fleet, V(none) nothing.
    type: str
    choices: [hosts, once, none]
    default: hosts
extends_documentation_fragment:
  - defender.tvm.kb_query
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - defender.tvm.attributes.role_action
  - defender.tvm.connection
attributes:
  check_mode:
    support: none
    details: It writes the report files; the role runs it with C(check_mode=false), also in a dry run.
notes:
  - The connection options come, the first found winning, from the task's arguments (with
    C(module_defaults) for C(group/defender.tvm.all)), then the C(ansible_mde_*) variables, then
    the C(MDE_*) and C(AZURE_*) environment variables.
seealso:
  - module: defender.tvm.kb_plan
'''

EXAMPLES = r'''
- name: Ask Defender about every Windows host, and write the reports on the controller
  defender.tvm.kb_report:
    mode: report
    strategy: export
    host_pattern: windows
    report_dir: reports
    gate: once
  run_once: true
  delegate_to: localhost
  register: reported

- name: Fail once when a host is not compliant
  ansible.builtin.fail:
    msg: "{{ reported.gate.message }}"
  when: reported.gate.message | length > 0
  run_once: true
'''

RETURN = r'''
report_dir:
  description: The directory the reports were written to (absolute).
  returned: success
  type: str
  sample: /home/ci/project/kb_patching_reports
files:
  description: The report files written (or left as they were, unchanged).
  returned: success
  type: list
  elements: str
  sample: [/home/ci/project/kb_patching_reports/kb_patching.json]
summary:
  description: The report's summary (the C(summary) of C(kb_patching.json)).
  returned: success
  type: dict
  sample: {"hosts": 3, "compliant": 1, "noncompliant": 1, "not_in_defender": 1, "kbs": 4,
           "outcomes": {"missing": 3, "installed": 1, "failed": 0, "pending_reboot": 0, "not_offered": 2}}
gate:
  description: What the gate fails.
  returned: success
  type: dict
  contains:
    mode:
      description: The O(gate) it was worked out for.
      type: str
      sample: once
    message:
      description: With O(gate=once), why the fleet fails (the first 20 failing hosts with their KBs); empty when it passes.
      type: str
      sample: "1 of 3 hosts are not compliant (report mode, export strategy): web01 (KB5034765: missing)"
    hosts:
      description: With O(gate=hosts), each failing host and why.
      type: dict
      sample: {"web01": "web01 is not compliant (install mode, device strategy): KB5034765: failed"}
'''
