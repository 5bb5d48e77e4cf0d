# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: missing_kbs
short_description: The security updates (KBs) Microsoft Defender for Endpoint says are missing for software
version_added: 1.0.0
description:
  - Returns the missing KBs of each software ID given as a term, from
    C(GET /api/Software/{id}/getmissingkbs), as one flat list of records.
  - Runs in the controller process, so it is much cheaper than a module call; all terms are
    queried with one token, concurrently and paced under the API's call budget.
  - Requires the application permission C(Software.Read.All) of the C(WindowsDefenderATP) API.
author:
  - defender.tvm maintainers (@defender-tvm)
options:
  _terms:
    description:
      - Defender software IDs such as V(microsoft-_-edge). Lists are flattened; repeated IDs are
        queried once.
    required: true
    type: list
    elements: str
  ignore_unknown:
    description:
      - When V(false), an ID Defender does not know fails the lookup, naming every unknown ID.
      - When V(true), unknown IDs are skipped with a warning.
    type: bool
    default: false
extends_documentation_fragment:
  - defender.tvm.connection
  - defender.tvm.connection.plugins
notes:
  - A lookup does not get Ansible's C(no_log) masking; its messages never contain a secret, but
    keep secrets out of the lookup call's literal text (use variables or the environment).
seealso:
  - module: defender.tvm.missing_kbs_info
    description: The same query as a module, also per device, with an aggregated result.
'''

EXAMPLES = r'''
- name: Missing KBs of Edge, credentials from MDE_* / AZURE_* environment variables
  ansible.builtin.debug:
    msg: "{{ query('defender.tvm.missing_kbs', 'microsoft-_-edge') | map(attribute='kb') | list }}"

- name: The KBs that address 10 CVEs or more, across several products
  ansible.builtin.set_fact:
    urgent_kbs: >-
      {{ query('defender.tvm.missing_kbs', software_ids, ignore_unknown=true)
         | selectattr('cve_addressed', '>=', 10) | map(attribute='kb') | unique | list }}
  vars:
    software_ids: [microsoft-_-windows_11, microsoft-_-.net_framework]

# For ansible.windows.win_updates, use the accept_list that defender.tvm.missing_kbs_info
# returns: its patterns select exactly these KBs in win_updates' matching.

- name: Explicit options (secrets from variables, never literal)
  ansible.builtin.set_fact:
    edge_kbs: >-
      {{ query('defender.tvm.missing_kbs', 'microsoft-_-edge',
               tenant_id=mde_tenant_id, client_id=mde_client_id,
               client_certificate_path='/etc/defender/app.pem', cloud='gcc_high') }}
'''

RETURN = r'''
_raw:
  description:
    - One record per missing KB per software ID, in term order, most CVEs addressed first
      within a software ID. A KB missing for two software IDs appears once for each.
  type: list
  elements: dict
  contains:
    software_id:
      description: The software ID that reported the KB.
      type: str
      sample: microsoft-_-edge
    id:
      description: The KB number without the C(KB) prefix.
      type: str
      sample: "4540673"
    kb:
      description: The KB number with its prefix.
      type: str
      sample: KB4540673
    name:
      description: The update's name.
      type: str
      sample: March 2020 Security Updates
    products_names:
      description: The Defender product names the KB fixes.
      type: list
      elements: str
      sample: [edge]
    url:
      description: The Microsoft Update Catalog page of the KB.
      type: str
      sample: https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB4540673
    machine_missed_on:
      description: The number of devices Defender counts as missing the KB.
      type: int
      sample: 240
    cve_addressed:
      description: The number of CVEs the KB addresses.
      type: int
      sample: 14
'''

from ansible_collections.defender.tvm.plugins.module_utils._missing_kbs import query_missing_kbs
from ansible_collections.defender.tvm.plugins.plugin_utils._lookup import DefenderLookupBase, display


class LookupModule(DefenderLookupBase):

    def run(self, terms, variables=None, **kwargs):
        software_ids = self._flatten(terms)

        def query(client):
            answer = query_missing_kbs(client, software_ids=software_ids,
                                       ignore_unknown=self.get_option('ignore_unknown'))
            if answer['not_found']:
                display.warning("Defender does not know these software IDs, skipped: %s"
                                % ', '.join(answer['not_found']))
            return [dict(kb, software_id=entry['software_id'])
                    for entry in answer['results'] for kb in entry['missing_kbs']]

        return self.run_query(variables, kwargs, query)
