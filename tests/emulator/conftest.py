# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make the emulator package importable for its own tests, however pytest is started, and share
one emulator per worker between test_emulator.py and test_export.py."""
# pylint: disable=redefined-outer-name,wrong-import-position

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pytest  # noqa: E402

from emulator_helpers import FakeClock, VerifyingSession  # noqa: E402
from mde_emulator import Emulator  # noqa: E402


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory):
    """The shared emulator's state dir."""
    return str(tmp_path_factory.mktemp("emulator-state"))


@pytest.fixture(scope="session")
def clock():
    """The shared emulator's clock: tests move it instead of sleeping."""
    return FakeClock()


@pytest.fixture(scope="session")
def emu(state_dir, clock):
    """One emulator (seed 7) for the whole session, reset before every test that uses it."""
    with Emulator(state_dir, seed=7, clock=clock) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def clean(request):
    """Faults, stats and revocations back to the start for every test that uses ``emu``."""
    if "emu" in request.fixturenames:
        request.getfixturevalue("emu").reset()


@pytest.fixture
def http(emu):
    """A session that trusts the emulator's CA whatever REQUESTS_CA_BUNDLE says."""
    with VerifyingSession(emu.ca_path) as session:
        yield session
