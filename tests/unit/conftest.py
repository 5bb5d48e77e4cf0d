# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for the unit tests; the helpers they use live in helpers.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.defender.tvm.plugins.module_utils._options import OPTIONS
from ansible_collections.defender.tvm.tests.unit.helpers import make_settings

# Every environment variable the shared options read (MDE_* and AZURE_*).
OPTION_ENVIRONMENT = sorted(set(name for definition in OPTIONS.values() for name in definition['env']))


@pytest.fixture
def clean_environment(monkeypatch):
    """No MDE_*/AZURE_* variable of the machine running the tests leaks into a test."""
    for name in OPTION_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def settings():
    return make_settings()
