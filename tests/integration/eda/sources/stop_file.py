# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test-only event source: one ``{"stop": true}`` event once the file ``path`` exists, so that a
test ends an ansible-rulebook run with a shutdown rule when it has seen what it waited for."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import asyncio
import os


async def main(queue, args):
    while not os.path.exists(args['path']):
        await asyncio.sleep(0.2)
    await queue.put({'stop': True})
    while True:  # a source that returned would end the run before the shutdown rule acts
        await asyncio.sleep(3600)
