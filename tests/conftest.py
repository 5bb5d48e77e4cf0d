# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The markers scripts/test.sh selects with, registered for the whole suite.

A test module opts in with a ``pytestmark = pytest.mark.<name>`` line at its top:

representative: the integration tests the extra ansible-core versions of the matrix run
    (``-m representative``; the default version runs everything). Together they cover each
    plugin type end to end: the modules, the lookup, the kb_plan action, the role and its
    playbooks in report, check and install mode, authentication and secret handling, TLS.
once: tests whose outcome does not depend on the ansible-core version, or that are too slow to
    repeat (the soak, the browser test, the packaging tests): only the default version runs them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

MARKERS = {
    'representative': 'an integration test the extra ansible-core versions of scripts/test.sh run too',
    'once': 'runs on the default ansible-core only (scripts/test.sh deselects it on the other versions)',
}


def pytest_configure(config):
    for name, description in sorted(MARKERS.items()):
        config.addinivalue_line('markers', '%s: %s' % (name, description))
