# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Integration tests: real ansible-playbook runs against the emulator over HTTPS.

Nothing of the collection is stubbed here: the module and the lookup run as Ansible runs them,
and talk to tests/emulator over real sockets with real TLS and the real OAuth flow. The runner is
harness.py; this file holds the fixtures.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.defender.tvm.tests.integration.harness import Ansible

from mde_emulator import Emulator  # on sys.path through harness.py


@pytest.fixture(scope='session')
def emulator(tmp_path_factory):
    """One emulator per session, hence per pytest-xdist worker."""
    with Emulator(str(tmp_path_factory.mktemp('emulator')), seed=1234, extra_software=60, extra_machines=20) as emu:
        yield emu


@pytest.fixture(scope='module')
def today(tmp_path_factory):
    """An emulator whose snapshot is the start of the current six-hour bucket (the event source's
    own clock and 14-day bound apply), one per test module: its delta changes stay in that module."""
    with Emulator(str(tmp_path_factory.mktemp('emulator-now')), seed=1234, extra_software=60, extra_machines=20,
                  snapshot='now') as emu:
        yield emu


@pytest.fixture
def ansible(emulator, tmp_path):
    emulator.reset()  # faults back to none, stats cleared, revocations forgotten
    return Ansible(emulator, tmp_path)
