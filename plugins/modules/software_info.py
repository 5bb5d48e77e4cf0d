#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: software_info
short_description: Get the software inventory of Microsoft Defender for Endpoint, and the devices that have it
version_added: 1.0.0
description:
  - Lists the organisation's software inventory from Defender vulnerability management
    (C(GET /api/Software), filtered on vendor, name or an OData expression and paged to the end
    with C($top)/C($skip)), or gets specific software by ID (C(GET /api/Software/{id})).
  - With O(machine_references=true), each software also lists the devices that have it
    (C(GET /api/Software/{id}/machineReferences)), queried concurrently.
  - Requires the application permission C(Software.Read.All) of the C(WindowsDefenderATP) API.
author:
  - defender.tvm maintainers (@defender-tvm)
options:
  software_ids:
    description:
      - Defender software IDs such as V(microsoft-_-windows_11). Without it, the inventory is
        listed (filtered by O(vendor), O(name) and O(filter)).
    type: list
    elements: str
  vendor:
    description:
      - Only software of this vendor, for example V(microsoft) (an exact match, ignoring case).
      - Sent to Defender in the C($filter), and checked again on each software it returns, so the
        answer is the same from a server that ignores the filter.
      - Ignored with O(software_ids).
    type: str
  name:
    description:
      - Only software of this name, for example V(windows_11) (an exact match, ignoring case;
        Defender's names are lowercase, with underscores for spaces).
      - Sent to Defender and checked again on each software it returns, as O(vendor) is.
      - Ignored with O(software_ids).
    type: str
  filter:
    description:
      - An OData C($filter) expression on C(id), C(name) or C(vendor), combined with O(vendor) and
        O(name) by C(and), for example V(startswith(name,'windows'\)).
      - Passed to Defender as given. The module cannot evaluate it on what comes back, so its
        result is what Defender makes of the expression; prefer O(vendor) and O(name), which are
        checked.
      - Ignored with O(software_ids).
    type: str
  machine_references:
    description:
      - Add to each software the devices that have it.
    type: bool
    default: false
  ignore_unknown:
    description:
      - With O(software_ids), list unknown IDs in RV(not_found) instead of failing.
    type: bool
    default: false
  details:
    description:
      - With O(software_ids), get each software's details (C(GET /api/Software/{id})).
      - V(false) with O(machine_references=true) fetches only the device lists, one call per
        software; the entries then hold only C(id) and C(machine_references), and unknown IDs
        fail the machine-references call.
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - defender.tvm.attributes.info_module
  - defender.tvm.connection
seealso:
  - module: defender.tvm.missing_kbs_info
  - name: List software inventory API
    link: https://learn.microsoft.com/en-us/defender-endpoint/api/get-software
    description: The Defender API this module calls.
'''

EXAMPLES = r'''
# In a play on your Windows hosts: ask Defender once, from the controller.
- name: Every Microsoft software with known weaknesses
  defender.tvm.software_info:
    vendor: microsoft
  delegate_to: localhost
  run_once: true
  register: inventory

- name: Their IDs, for defender.tvm.missing_kbs_info
  ansible.builtin.set_fact:
    vulnerable_ids: "{{ inventory.software | selectattr('weaknesses', '>', 0) | map(attribute='id') | list }}"

- name: Which devices have Windows 11 and Office
  defender.tvm.software_info:
    software_ids: [microsoft-_-windows_11, microsoft-_-office]
    machine_references: true
  delegate_to: localhost
  run_once: true
  register: installed

- name: Device names per software
  ansible.builtin.debug:
    msg: "{{ item.id }}: {{ item.machine_references | map(attribute='computer_dns_name') | join(', ') }}"
  loop: "{{ installed.software }}"
  loop_control:
    label: "{{ item.id }}"
'''

RETURN = r'''
software:
  description: The software, in input order with O(software_ids), else in the API's order.
  returned: success
  type: list
  elements: dict
  contains:
    id:
      description: The software ID.
      type: str
      sample: microsoft-_-windows_11
    name:
      description: The software name (not with O(details=false), nor the other details below).
      type: str
      sample: windows_11
    vendor:
      description: The publisher.
      type: str
      sample: microsoft
    weaknesses:
      description: The number of known vulnerabilities.
      type: int
      sample: 638
    public_exploit:
      description: Whether a public exploit exists for some of them.
      type: bool
    active_alert:
      description: Whether an active alert is associated with the software.
      type: bool
    exposed_machines:
      description: The number of exposed devices.
      type: int
      sample: 172
    impact_score:
      description: The exposure score impact of the software.
      type: float
      sample: 2.39947438
    machine_references:
      description: The devices that have the software.
      returned: with O(machine_references=true)
      type: list
      elements: dict
      contains:
        id:
          description: The Defender device ID.
          type: str
          sample: 7c7e1896fa39efb0a32a2cf421d837af1b9bf762
        computer_dns_name:
          description: The device's computer DNS name.
          type: str
          sample: ws-0001.contoso.local
        os_platform:
          description: The device's OS platform.
          type: str
          sample: Windows11
        rbac_group_name:
          description: The device group.
          type: str
          sample: Workstations
not_found:
  description: Software IDs Defender does not know (only with O(ignore_unknown=true)).
  returned: success
  type: list
  elements: str
  sample: []
'''

from ansible_collections.defender.tvm.plugins.module_utils._module import DefenderModule
from ansible_collections.defender.tvm.plugins.module_utils._software import query_software


def main():
    module = DefenderModule(
        argument_spec=dict(
            software_ids=dict(type='list', elements='str'),
            vendor=dict(type='str'),
            name=dict(type='str'),
            filter=dict(type='str'),
            machine_references=dict(type='bool', default=False),
            ignore_unknown=dict(type='bool', default=False),
            details=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    module.run(lambda client: query_software(
        client, software_ids=params['software_ids'], vendor=params['vendor'], name=params['name'],
        odata_filter=params['filter'], machine_references=params['machine_references'],
        ignore_unknown=params['ignore_unknown'], details=params['details']))


if __name__ == '__main__':
    main()
