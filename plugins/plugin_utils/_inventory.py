# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The hosts a play on a host pattern would run on, for plugins that run on the controller.

FOR INTERNAL COLLECTION USE ONLY; the API may change in any release.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.inventory.manager import InventoryManager


def pattern_hosts(loader, groups, pattern, limit=None):
    """The inventory hostnames of ``pattern`` (any host pattern: groups, names, wildcards, ``~regex``,
    ``:!`` and ``:&``) within ``limit`` (what ``--limit`` gave, ``ansible_limit``), in inventory order.

    ``groups`` is the ``groups`` variable: the inventory rebuilt from it in an InventoryManager (as
    ``ansible.builtin.inventory_hostnames`` does), so that Ansible's own pattern rules apply, and
    its subset (``--limit``, ``@file`` included) as ansible-playbook applies it to a play.
    """
    manager = InventoryManager(loader, parse=False)
    for group, hosts in groups.items():
        manager.add_group(group)
        for host in hosts:
            manager.add_host(host, group=group)
    if limit:
        manager.subset(limit)
    return [host.name for host in manager.get_hosts(pattern=pattern)]
