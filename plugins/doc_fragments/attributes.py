# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment:
    # Attributes of the read-only *_info modules.
    INFO_MODULE = r'''
attributes:
  check_mode:
    support: full
    details: The module only reads from the Defender API, so it behaves the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: all
    details: The module talks to the Defender API over HTTPS; run it on the controller (delegate_to localhost).
  action_group:
    description: Use C(group/defender.tvm.all) in C(module_defaults) to set the shared options once.
    support: full
    membership:
      - defender.tvm.all
'''

    # Attributes of the kb_patching role's actions (kb_plan, kb_report), but check_mode.
    ROLE_ACTION = r'''
attributes:
  action:
    support: full
    details: Everything happens in the action plugin, on the controller.
  async:
    support: none
  bypass_host_loop:
    support: none
  diff_mode:
    support: none
  platform:
    support: full
    platforms: all
    details: It works on the controller and talks to the Defender API from there; it never connects to the host.
  action_group:
    description: Use C(group/defender.tvm.all) in C(module_defaults) to set the shared options once.
    support: full
    membership:
      - defender.tvm.all
'''
