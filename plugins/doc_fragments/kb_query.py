# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment:
    # The question the kb_patching role asks Defender: the options of defender.tvm.kb_plan, which
    # defender.tvm.kb_report also takes to ask it in report mode.
    DOCUMENTATION = r'''
options:
  strategy:
    description:
      - V(software) (calls per software), V(device) (calls per host, exact per host) or V(export)
        (exact per host, from the tenant's vulnerability export, calls independent of the hosts).
    type: str
    choices: [software, device, export]
    default: software
  export_source:
    description:
      - With O(strategy=export), read the export's V(json) pages or its V(files) (recommended above
        about 100,000 devices).
    type: str
    choices: [json, files]
    default: json
  software_ids:
    description:
      - With O(strategy=software), the Defender software IDs, such as V(microsoft-_-windows_11).
    type: list
    elements: str
    default: []
  discover:
    description:
      - With O(strategy=software), take every software with known weaknesses from Defender's
        inventory instead of O(software_ids).
    type: bool
    default: false
  discover_vendor:
    description: With O(discover=true), only this vendor's software, such as V(microsoft).
    type: str
  discover_name:
    description: With O(discover=true), only software of this name, such as V(windows_11).
    type: str
  min_cve_addressed:
    description: Leave out KBs that address fewer CVEs.
    type: int
    default: 0
  include_kbs:
    description: Only these KBs (V(KB5034122) or V(5034122)); empty means all.
    type: list
    elements: str
    default: []
  exclude_kbs:
    description: Never these KBs.
    type: list
    elements: str
    default: []
  hosts:
    description:
      - The inventory hosts to plan for. Defaults to every host of the play (C(ansible_play_hosts_all)).
    type: list
    elements: str
  host_pattern:
    description:
      - Plan for the hosts of this host pattern within the run's C(--limit) (as a play on it would
        run on them; see P(defender.tvm.pattern_hosts#lookup)) instead of O(hosts), so that a play on
        the controller can plan for a fleet with no task per host. A pattern that matches no host
        fails the task, since a gate over no host would pass.
      - The C(ansible_mde_*) variables the task does not have are then taken from the first of
        those hosts, where a play on the hosts would have read them.
    type: str
  device_names:
    description:
      - Inventory hostname to the name Defender knows the host by (an FQDN or a short name, compared
        case-insensitively, or the 40-hexadecimal device ID).
      - A host not in it takes its C(kb_patching_device_name) host variable, else its inventory
        hostname.
    type: dict
'''
