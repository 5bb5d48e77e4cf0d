#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: device_info
short_description: Get the devices Microsoft Defender for Endpoint knows
version_added: 1.1.1
description:
  - Lists the devices Defender knows (C(GET /api/machines), paged to the end with C($top) and
    C($skip), 10,000 devices per call), or only those that O(devices) names.
  - Finding out which of many hosts Defender knows costs one call per 10,000 devices of the
    tenant, whatever the number of hosts; asking per host would cost a call each.
  - Requires the application permission C(Machine.Read.All) of the C(WindowsDefenderATP) API.
author:
  - defender.tvm maintainers (@defender-tvm)
options:
  devices:
    description:
      - Keep only these devices, each given as its Defender device ID (40 hexadecimal characters)
        or its computer name, case-insensitively, as the FQDN or the short name.
      - Names that no device has are listed in RV(not_found). A short name that matches
        several devices fails the task, naming them; give the FQDN.
      - Without it, every device is returned.
    type: list
    elements: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - defender.tvm.attributes.info_module
  - defender.tvm.connection
seealso:
  - module: defender.tvm.missing_kbs_info
    description: The KBs each device misses.
  - name: List machines API
    link: https://learn.microsoft.com/en-us/defender-endpoint/api/get-machines
    description: The Defender API this module calls.
'''

EXAMPLES = r'''
- name: Which of the play's Windows hosts does Defender know?
  defender.tvm.device_info:
    devices: "{{ groups['windows'] | default(['srv-sql01.contoso.local']) }}"
  delegate_to: localhost
  run_once: true
  register: known

- name: Hosts Defender has never seen (no sensor, or another name)
  ansible.builtin.debug:
    msg: "Not in Defender: {{ known.not_found | join(', ') }}"
  when: known.not_found | length > 0

- name: Every device, for a report
  defender.tvm.device_info:
  delegate_to: localhost
  run_once: true
  register: fleet
'''

RETURN = r'''
devices:
  description: The devices, in the order Defender lists them; each device once.
  returned: success
  type: list
  elements: dict
  contains:
    id:
      description: The Defender device ID.
      type: str
      sample: 2339ad14a01bd0299afb93dfa2550136057bff96
    computer_dns_name:
      description: The device's computer DNS name.
      type: str
      sample: srv-sql01.contoso.local
    os_platform:
      description: The OS platform.
      type: str
      sample: WindowsServer2022
    os_version:
      description: The OS version.
      type: str
      sample: 21H2
    health_status:
      description: The sensor's health, such as V(Active) or V(Inactive).
      type: str
      sample: Active
    onboarding_status:
      description: Whether the device is onboarded to Defender.
      type: str
      sample: Onboarded
    last_seen:
      description: When the device last sent a full report (about once a day).
      type: str
      sample: "2024-02-19T21:24:59.312678Z"
    rbac_group_id:
      description: The ID of the device group.
      type: int
      sample: 101
    rbac_group_name:
      description: The device group.
      type: str
      sample: Servers
    machine_tags:
      description: The device's tags.
      type: list
      elements: str
      sample: [tier0]
not_found:
  description: The names or IDs in O(devices) that no device has.
  returned: success
  type: list
  elements: str
  sample: [brand-new-host]
'''

from ansible_collections.defender.tvm.plugins.module_utils.devices import list_devices
from ansible_collections.defender.tvm.plugins.module_utils.module import DefenderModule


def main():
    module = DefenderModule(
        argument_spec=dict(devices=dict(type='list', elements='str')),
        supports_check_mode=True,
    )
    module.run(lambda client: list_devices(client, names=module.params['devices']))


if __name__ == '__main__':
    main()
