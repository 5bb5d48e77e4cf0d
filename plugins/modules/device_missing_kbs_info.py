#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: device_missing_kbs_info
short_description: Every device's missing KBs, for the whole tenant, from Microsoft Defender for Endpoint's vulnerability export
version_added: 2.0.0
description:
  - Reads Defender's vulnerability export - every finding of every device, each with the security
    update that fixes it - and returns each device's missing KBs, in a number of calls that does not
    grow with the devices (one per page of O(page_size) findings, or a handful for the files).
  - O(source=json) pages through C(GET /api/machines/SoftwareVulnerabilitiesByMachine), following
    C(@odata.nextLink) to the end. O(source=files) asks C(GET /api/machines/SoftwareVulnerabilitiesExport)
    for links to the export's files (gzip-compressed JSON lines on blob storage) and reads each as a
    stream, B(without the bearer token) - the link's SAS is the credential. When a link has expired
    while reading, it asks once for fresh links and goes on with the files not read yet. Microsoft
    recommends the files above about 100,000 devices.
  - The export is read as a stream and aggregated while reading, so memory grows with the devices
    and their KBs, not with the findings. A finding whose update is not a Microsoft KB (a vendor
    advisory such as C(ADV 200002), a Linux advisory such as C(RHSA-2024:9315), or none) is counted
    in RV(devices[].findings_without_kb), never dropped.
  - With O(since), reads the export's changes instead (C(GET /api/machines/SoftwareVulnerabilityChangesByMachine),
    at most 14 days back) and returns per device the KBs that became missing and those that were
    fixed, with the duplicates of device-group moves cancelled out.
  - Defender refreshes the export about every six hours; calling it does not start a new one.
  - Each call is paced under the endpoint's own limits (JSON pages and changes 30 a minute and 1,000
    an hour, files 5 a minute and 20 an hour) as well as O(requests_per_minute).
  - Requires the application permission C(Vulnerability.Read.All) of the C(WindowsDefenderATP) API
    (not Software.Read.All, which the other modules need).
author:
  - defender.tvm maintainers (@defender-tvm)
options:
  source:
    description:
      - V(json) pages through the export (the default); V(files) reads its files.
    type: str
    choices: [json, files]
    default: json
  devices:
    description:
      - Keep only these devices, each given as its Defender device ID (40 hexadecimal characters)
        or its computer name, case-insensitively, as the FQDN or the short name. A name that several
        devices answer to fails the task before anything is returned, naming each device and what
        to give instead - the FQDN for a short name that devices of several domains have, the device
        ID for an FQDN that several devices share (a device onboarded again keeps its name).
      - Names that no device of the export has are listed in RV(not_found). Without it, every device.
    type: list
    elements: str
  since:
    description:
      - Return the changes since this time (ISO 8601, such as V(2024-02-13T06:00:00Z); at most 14
        days back, Defender's limit) in RV(changes), instead of the snapshot.
      - A KB is in RV(changes[].new_kbs) when one of the device's findings it fixes was not missing
        at that time and is now; in RV(changes[].fixed_kbs) when one was missing then and none of
        its changed findings is missing now. The changes carry only the findings that changed, so a
        KB that another, older finding already made missing can be listed as new.
      - The changes have only a JSON route; O(source=files) and O(sas_valid_hours) do not apply.
    type: str
  page_size:
    description: Findings per page of the JSON routes (Defender's default is 50,000, at most 200,000).
    type: int
    default: 50000
  sas_valid_hours:
    description: With O(source=files), how long the file links stay valid (1 to 6 hours).
    type: int
    default: 1
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - defender.tvm.attributes.info_module
  - defender.tvm.connection
seealso:
  - module: defender.tvm.missing_kbs_info
    description: Missing KBs per software or per device, one call each.
  - name: Export software vulnerabilities assessment per device
    link: https://learn.microsoft.com/en-us/defender-endpoint/api/get-assessment-software-vulnerabilities
    description: The Defender API this module reads.
'''

EXAMPLES = r'''
# In a play on your Windows hosts: read the export once, from the controller. To patch each host
# with its own KBs, the defender.tvm.kb_patching role's export strategy does the matching for you.
- name: The missing KBs of this play's hosts, from the vulnerability export
  defender.tvm.device_missing_kbs_info:
    devices: "{{ ansible_play_hosts_all }}"
  delegate_to: localhost
  run_once: true
  register: export

- name: How many of them miss KBs, and the most urgent KB
  ansible.builtin.debug:
    msg: >-
      {{ export.devices | rejectattr('missing_kbs', 'equalto', []) | list | length }} devices miss KBs; the most
      urgent is {{ (export.missing_kbs | first | default({})).kb | default('none') }}, missing on
      {{ (export.missing_kbs | first | default({})).machine_missed_on | default(0) }} of them
  run_once: true

- name: For a large tenant, read the export's files instead
  defender.tvm.device_missing_kbs_info:
    source: files
  delegate_to: localhost
  run_once: true
  register: fleet

- name: What became missing and what was fixed since the last run
  defender.tvm.device_missing_kbs_info:
    since: "{{ last_run_time }}"   # such as 2024-02-19T00:00:00Z, at most 14 days back
  delegate_to: localhost
  run_once: true
  register: changes
'''

RETURN = r'''
devices:
  description: One entry per device kept (all of them without O(devices)), by device name. Not with O(since).
  returned: success, without O(since)
  type: list
  elements: dict
  contains:
    device_id:
      description: The Defender device ID.
      type: str
      sample: 2339ad14a01bd0299afb93dfa2550136057bff96
    device_name:
      description: The device's computer name as the export gives it.
      type: str
      sample: srv-sql01.contoso.local
    os_platform:
      description: The OS platform.
      type: str
      sample: WindowsServer2022
    rbac_group:
      description: The device group.
      type: str
      sample: Servers
    missing_kbs:
      description:
        - The device's missing KBs, the most CVEs addressed first, each with C(id) (the number),
          C(kb) (with its prefix), C(name), C(url), C(cve_addressed) (how many of this device's
          findings it fixes) and C(software) (the software it fixes on this device).
      type: list
      elements: dict
    findings_without_kb:
      description: The device's findings whose fix is not a Microsoft KB (vendor or Linux advisories, or none).
      type: int
      sample: 3
missing_kbs:
  description:
    - Each KB once across the returned devices, most CVEs first, with C(id), C(kb), C(name), C(url),
      C(cve_addressed) (the largest of the devices' counts), C(machine_missed_on) (how many of the
      returned devices miss it) and C(software).
  returned: success, without O(since)
  type: list
  elements: dict
accept_list:
  description:
    - Patterns, one per KB in RV(missing_kbs) order, for the C(accept_list) option of
      M(ansible.windows.win_updates), as M(defender.tvm.missing_kbs_info) returns them.
  returned: success, without O(since)
  type: list
  elements: str
  sample: ["KB5034441(?:\\s+KB\\d+)*$"]
changes:
  description:
    - With O(since), one entry per device that has changes, by device name.
  returned: success, with O(since)
  type: list
  elements: dict
  contains:
    device_id:
      description: The Defender device ID.
      type: str
      sample: 2339ad14a01bd0299afb93dfa2550136057bff96
    device_name:
      description: The device's computer name as the changes give it.
      type: str
      sample: srv-sql01.contoso.local
    os_platform:
      description: The OS platform.
      type: str
      sample: WindowsServer2022
    rbac_group:
      description: The device group.
      type: str
      sample: Servers
    new_kbs:
      description:
        - The KBs that became missing (see O(since)), each with C(id), C(kb), C(name), C(url),
          C(software), C(cve_addressed) (how many of the device's findings the KB fixes became
          missing) and C(event_time) (when the last of them did), most CVEs first.
      type: list
      elements: dict
      sample: [{"id": "5034765", "kb": "KB5034765", "name": "2024-02 Cumulative Update for Windows 11 (KB5034765)",
                "url": "https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB5034765", "software": ["windows_11"],
                "cve_addressed": 3, "event_time": "2024-02-19T18:00:00Z"}]
    fixed_kbs:
      description: The KBs that were fixed, as in RV(changes[].new_kbs) (C(cve_addressed) counts the fixed findings).
      type: list
      elements: dict
      sample: []
    event_time:
      description: When the device's last change in the range happened.
      type: str
      sample: "2024-02-19T18:00:00Z"
latest_event_time:
  description: With O(since), the time of the latest change the read saw (any device), or null when it saw none.
  returned: success, with O(since)
  type: str
  sample: "2024-02-20T06:00:00Z"
since:
  description: With O(since), the time the changes were read from, in UTC.
  returned: success, with O(since)
  type: str
  sample: "2024-02-13T06:00:00Z"
generated_time:
  description:
    - When Defender generated the export (the files route gives it); V(null) on the JSON route,
      which gives no time.
  returned: success, without O(since)
  type: str
  sample: "2024-02-20T06:00:00Z"
read_started:
  description: When this read started (UTC).
  returned: success
  type: str
  sample: "2024-02-20T07:12:44Z"
records_read:
  description: How many findings were read.
  returned: success
  type: int
  sample: 18342
not_found:
  description: The entries of O(devices) that no device of the export has.
  returned: success
  type: list
  elements: str
  sample: []
resolved:
  description:
    - Each entry of O(devices) and the device ID it named (V(null) for none), so that a caller
      need not match the names again. Empty without O(devices).
  returned: success, without O(since)
  type: dict
  sample: {"ws-0001": "2339ad14a01bd0299afb93dfa2550136057bff96"}
'''

from ansible_collections.defender.tvm.plugins.module_utils._export import (
    DEFAULT_PAGE_SIZE, DEFAULT_SAS_VALID_HOURS, SOURCES, read_changes, read_export)
from ansible_collections.defender.tvm.plugins.module_utils._module import DefenderModule


def main():
    module = DefenderModule(
        argument_spec=dict(
            source=dict(type='str', choices=list(SOURCES), default='json'),
            devices=dict(type='list', elements='str'),
            since=dict(type='str'),
            page_size=dict(type='int', default=DEFAULT_PAGE_SIZE),
            sas_valid_hours=dict(type='int', default=DEFAULT_SAS_VALID_HOURS),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params['since'] is not None and params['source'] == 'files':
        module.fail_json(msg="since reads the export's changes, which have only a JSON route: leave source unset "
                             "or json")
    if params['since'] is not None:
        module.run(lambda client: read_changes(client, params['since'], devices=params['devices'],
                                               page_size=params['page_size']))
    module.run(lambda client: read_export(client, params['source'], devices=params['devices'],
                                          page_size=params['page_size'], sas_valid_hours=params['sas_valid_hours']))


if __name__ == '__main__':
    main()
