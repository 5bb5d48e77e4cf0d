# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection's version, as galaxy.yml gives it (tests/unit keeps the two in step).

FOR INTERNAL COLLECTION USE ONLY; the API may change in any release.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

COLLECTION_VERSION = '1.1.1'
