#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# The work is done by the action plugin of the same name (plugins/action/kb_plan.py), on the
# controller; this file holds its documentation only, as for ansible.builtin.set_fact.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: kb_plan
short_description: Plan which KBs each host should get, from one question to Microsoft Defender for Endpoint
version_added: 2.0.0
description:
  - Asks Defender, once and on the controller, which security updates (KBs) the hosts miss, and
    maps each inventory host to its Defender device and its KBs, with an C(accept_list) for
    M(ansible.windows.win_updates). This is the Defender step of the C(defender.tvm.kb_patching)
    role, and usable on its own.
  - Runs in the controller's worker process, like a lookup - no module is copied or forked - and
    every call of the plan shares one token.
  - With O(strategy=software), Defender is asked once per software (the missing KBs and the devices
    that have it), so the calls do not grow with the hosts. A host gets the KBs of the software
    Defender lists on its device; Defender's lists are fleet-wide, so this over-reports per host. A
    host that has none of the software but that Defender knows (among the devices of its Windows
    software) is in Defender with nothing to patch.
  - With O(strategy=device), each host's own missing KBs, one call per host, plus one device listing
    per twelve hosts named by their computer name rather than their device ID.
  - A name that several Defender devices answer to fails the task, naming them and what to give
    instead (the FQDN, or the device ID when the FQDN is shared); it is never guessed.
  - With O(strategy=export), each host's own missing KBs, as exact as V(device), from one read of
    Defender's vulnerability export of the whole tenant (as M(defender.tvm.device_missing_kbs_info)
    reads it) - no call per host, and no name lookup; calls grow with the tenant's findings, not
    with the hosts. The plan says how old the data is (RV(plan.data_time)).
  - The plan carries a RV(plan.key) of its inputs. Given the previous plan as O(previous), a task
    with the same inputs returns it without asking Defender (serial batches of one play); other
    software, filters, strategy or hosts ask again.
  - Requires the application permission C(Software.Read.All) of the C(WindowsDefenderATP) API;
    the V(device) strategy with computer names also needs C(Machine.Read.All), and the V(export)
    strategy needs C(Vulnerability.Read.All) instead.
author:
  - defender.tvm maintainers (@defender-tvm)
options:
  previous:
    description:
      - A plan this action returned before (RV(plan)). When its RV(plan.key) matches this task's
        inputs it is returned as it is, and Defender is not asked.
    type: dict
extends_documentation_fragment:
  - defender.tvm.kb_query
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - defender.tvm.attributes.role_action
  - defender.tvm.connection
attributes:
  check_mode:
    support: full
    details: It only reads from the Defender API, so it behaves the same in check mode.
notes:
  - The connection options come, the first found winning, from the task's arguments (with
    C(module_defaults) for C(group/defender.tvm.all)), then the C(ansible_mde_*) variables, then
    the C(MDE_*) and C(AZURE_*) environment variables.
seealso:
  - module: defender.tvm.missing_kbs_info
  - module: defender.tvm.software_info
'''

EXAMPLES = r'''
- name: Plan each Windows host's KBs, asking Defender once
  defender.tvm.kb_plan:
    strategy: software
    software_ids: [microsoft-_-windows_11, microsoft-_-.net_framework]
    min_cve_addressed: 5
  run_once: true
  register: planned

- name: Install exactly the KBs planned for this host
  ansible.windows.win_updates:
    category_names: ['*']
    accept_list: "{{ planned.plan.hosts[inventory_hostname].accept_list }}"
    reboot: true
  when: planned.plan.hosts[inventory_hostname].kbs | length > 0
'''

RETURN = r'''
plan:
  description: The plan.
  returned: success
  type: dict
  contains:
    strategy:
      description: The strategy that made it.
      type: str
      sample: software
    source:
      description: Where the data came from - V(device), V(software), V(export (json\)) or V(export (files\)).
      type: str
      sample: export (files)
    data_time:
      description:
        - How old the data is - the export's generation time where the files route gives it, else
          when Defender was asked (UTC).
      type: str
      sample: "2024-02-20T06:00:00Z"
    key:
      description: A digest of the plan's inputs (strategy, software, filters, hosts and their device names).
      type: str
      sample: 0b9d9d3c5f0e4a41b7c1b2a6c1f8f2a0d3c4e5f60718293a4b5c6d7e8f901234
    hosts:
      description:
        - Per inventory host, C(device_id) and C(computer_dns_name) of its Defender device (V(null)
          when Defender does not know it), C(in_defender), C(software_ids) (the queried software on
          its device), C(kbs) (most CVEs addressed first) and C(accept_list).
      type: dict
      sample:
        web01:
          device_id: 2339ad14a01bd0299afb93dfa2550136057bff96
          computer_dns_name: web01.contoso.local
          in_defender: true
          software_ids: [microsoft-_-windows_11]
          kbs: [KB5034765]
          accept_list: ["KB5034765(?:\\s+KB\\d+)*$"]
    kbs:
      description:
        - Per planned KB, C(id), C(name), C(cve_addressed), C(machine_missed_on), C(url) and C(software_ids).
      type: dict
reused:
  description: Whether O(previous) was returned because its inputs are this task's.
  returned: success
  type: bool
'''
