#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: missing_kbs_info
short_description: Get the security updates (KBs) Microsoft Defender for Endpoint says are missing
version_added: 1.0.0
description:
  - Asks Microsoft Defender for Endpoint vulnerability management which security updates (KBs)
    are missing, for software products (C(GET /api/Software/{id}/getmissingkbs)) or for devices
    (C(GET /api/machines/{id}/getmissingkbs)).
  - All IDs are queried in one module run with one token, concurrently and paced under the API's
    call budget; 429 and transient errors are retried.
  - Returns each KB once across all IDs, the answer per ID, and an C(accept_list) ready
    for M(ansible.windows.win_updates).
  - Requires the application permission C(Software.Read.All) of the C(WindowsDefenderATP) API;
    resolving devices by computer name also needs C(Machine.Read.All).
author:
  - defender.tvm maintainers (@defender-tvm)
options:
  software_ids:
    description:
      - Defender software IDs, in the form C(vendor-_-product), for example V(microsoft-_-edge)
        or V(microsoft-_-windows_11).
      - Exactly one of O(software_ids) and O(machine_ids) is required.
      - Each ID is sent as one percent-encoded path segment; empty IDs and V(.)/V(..) are refused
        before any request. Repeated IDs are queried once.
    type: list
    elements: str
  machine_ids:
    description:
      - Defender device IDs (40 hexadecimal characters) or computer names, FQDN or short, any case.
        Names are resolved to devices first, all at once, with C(GET /api/machines) filtered on
        C(computerDnsName) (a call per twelve names; needs C(Machine.Read.All)); what Defender lists
        is checked again here.
      - A name that several devices answer to fails the task before any KB is asked for, naming
        each device and what to give instead - the FQDN for a short name that devices of several
        domains have, the device ID for an FQDN that several devices share (a device onboarded
        again keeps its name). Defender's own C(GET /api/machines/{name}) would silently pick one.
    type: list
    elements: str
  ignore_unknown:
    description:
      - When V(false), an ID Defender does not know (HTTP 404) fails the task, and the message
        names every unknown ID.
      - When V(true), unknown IDs are listed in RV(not_found) and the others are returned.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - defender.tvm.attributes.info_module
  - defender.tvm.connection
seealso:
  - plugin: defender.tvm.missing_kbs
    plugin_type: lookup
    description: The same query as a lookup, for use in templates and variables.
  - module: ansible.windows.win_updates
    description: Installs the updates; pass RV(accept_list) as its O(ansible.windows.win_updates#module:accept_list).
  - name: Get missing KBs by software ID
    link: https://learn.microsoft.com/en-us/defender-endpoint/api/get-missing-kbs-software
    description: The Defender API this module calls.
  - name: Get missing KBs by device ID
    link: https://learn.microsoft.com/en-us/defender-endpoint/api/get-missing-kbs-machine
    description: The Defender API this module calls for O(machine_ids).
'''

EXAMPLES = r'''
# In a play on your Windows hosts: ask Defender once, from the controller, then patch each host.
- name: Missing KBs for Edge and Windows 11, with credentials from the environment
  defender.tvm.missing_kbs_info:
    software_ids:
      - microsoft-_-edge
      - microsoft-_-windows_11
  delegate_to: localhost
  run_once: true
  register: missing

- name: Install exactly those KBs
  ansible.windows.win_updates:
    category_names: ['*']
    accept_list: "{{ missing.accept_list }}"
    reboot: true

- name: Per device, with credentials set once for the whole play
  module_defaults:
    group/defender.tvm.all:
      tenant_id: "{{ mde_tenant_id }}"
      client_id: "{{ mde_client_id }}"
      client_secret: "{{ mde_client_secret }}"
  block:
    - name: Query two devices, one by computer name
      defender.tvm.missing_kbs_info:
        machine_ids:
          - 2339ad14a01bd0299afb93dfa2550136057bff96
          - srv-sql01.contoso.local
        ignore_unknown: true
      delegate_to: localhost
      run_once: true
      register: devices

- name: Certificate credential on a regional API host
  defender.tvm.missing_kbs_info:
    software_ids: [microsoft-_-.net_framework]
    tenant_id: 00000000-0000-0000-0000-000000000000
    client_id: 11111111-1111-1111-1111-111111111111
    client_certificate_path: /etc/defender/app.pfx
    client_certificate_password: "{{ vault_pfx_password }}"
    api_url: https://eu.api.security.microsoft.com
  delegate_to: localhost
  run_once: true

- name: Fail a pipeline when a critical KB is missing
  ansible.builtin.assert:
    that: missing.missing_kbs | selectattr('cve_addressed', '>=', 10) | list | length == 0
    fail_msg: "Missing: {{ missing.missing_kbs | map(attribute='kb') | join(', ') }}"
'''

RETURN = r'''
missing_kbs:
  description:
    - Each missing KB once across all queried IDs, the most CVEs addressed first.
  returned: success
  type: list
  elements: dict
  contains:
    id:
      description: The KB number as Defender gives it, without the C(KB) prefix.
      type: str
      sample: "4540673"
    kb:
      description: The KB number with its prefix, as M(ansible.windows.win_updates) matches it.
      type: str
      sample: KB4540673
    name:
      description: The update's name.
      type: str
      sample: March 2020 Security Updates
    products_names:
      description: The Defender product names the KB fixes, merged over all IDs that reported it.
      type: list
      elements: str
      sample: [edge]
    url:
      description: The Microsoft Update Catalog page of the KB.
      type: str
      sample: https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB4540673
    machine_missed_on:
      description:
        - For O(software_ids), the number of devices Defender counts as missing the KB (the
          largest figure among the software that reported it).
        - For O(machine_ids), the number of queried devices that miss it.
      type: int
      sample: 240
    cve_addressed:
      description: The number of CVEs the KB addresses.
      type: int
      sample: 14
    software_ids:
      description: The queried software IDs that reported the KB, in input order.
      type: list
      elements: str
      returned: with O(software_ids)
      sample: [microsoft-_-edge]
    machine_ids:
      description: The device IDs that reported the KB, in input order.
      type: list
      elements: str
      returned: with O(machine_ids)
      sample: [2339ad14a01bd0299afb93dfa2550136057bff96]
results:
  description:
    - One entry per queried ID that Defender knows, in input order.
  returned: success
  type: list
  elements: dict
  contains:
    software_id:
      description: The software ID.
      type: str
      returned: with O(software_ids)
      sample: microsoft-_-edge
    machine_id:
      description: The Defender device ID.
      type: str
      returned: with O(machine_ids)
      sample: 2339ad14a01bd0299afb93dfa2550136057bff96
    computer_dns_name:
      description:
        - The device's computer DNS name, when it was given by name in O(machine_ids).
        - V(null) when it was given by its device ID - Defender's missing-KB answer carries no name,
          and not looking the device up is what saves the call.
      type: str
      returned: with O(machine_ids)
      sample: srv-sql01.contoso.local
    requested:
      description: The device ID or name as it was given in O(machine_ids).
      type: str
      returned: with O(machine_ids)
      sample: srv-sql01.contoso.local
    missing_kbs:
      description:
        - The KBs missing for this ID, most CVEs first, with the keys C(id), C(kb), C(name),
          C(products_names), C(url), C(machine_missed_on) and C(cve_addressed) as Defender
          reported them for this ID.
      type: list
      elements: dict
accept_list:
  description:
    - Patterns, one per KB in RV(missing_kbs) order, for the C(accept_list) option of
      M(ansible.windows.win_updates), each selecting exactly the update that carries that KB.
    - win_updates matches each pattern case-insensitively and unanchored against one string, the
      update's title followed by its KB IDs (for example V(... (KB4540673\)KB4540673)). So a bare
      C(KB45406) would also select C(KB4540673), a title that mentions a KB would select the wrong
      update, and C(^KB4540673$) would select nothing. These patterns match the KB only where the
      KB IDs are, at the end.
  returned: success
  type: list
  elements: str
  sample: ["KB4540673(?:\\s+KB\\d+)*$"]
not_found:
  description: The IDs Defender does not know (only non-empty with O(ignore_unknown=true)).
  returned: success
  type: list
  elements: str
  sample: []
'''

from ansible_collections.defender.tvm.plugins.module_utils._missing_kbs import query_missing_kbs
from ansible_collections.defender.tvm.plugins.module_utils._module import DefenderModule


def main():
    module = DefenderModule(
        argument_spec=dict(
            software_ids=dict(type='list', elements='str'),
            machine_ids=dict(type='list', elements='str'),
            ignore_unknown=dict(type='bool', default=False),
        ),
        mutually_exclusive=[('software_ids', 'machine_ids')],
        required_one_of=[('software_ids', 'machine_ids')],
        supports_check_mode=True,
    )
    params = module.params
    module.run(lambda client: query_missing_kbs(
        client, software_ids=params['software_ids'], machine_ids=params['machine_ids'],
        ignore_unknown=params['ignore_unknown']))


if __name__ == '__main__':
    main()
