# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Sample kb_patching reports, as the role writes them, for the renderer tests (unit and browser)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Untrusted names: an inventory hostname and a KB name that try to break out of HTML, XML and Markdown tables.
HOSTILE_HOST = 'db<01>&"prod"|eu'
HOSTILE_KB = 'KB5099999<img src=x onerror=alert(1)>&"q"|r'
CATALOG = 'https://catalog.update.microsoft.com/v7/site/Search.aspx?q='


def sample_report():
    """Four hosts covering every status and every outcome, as the kb_patching role writes it."""
    return {
        'mode': 'install',
        'strategy': 'software',
        'generated': '2026-11-27T15:00:00Z',
        'strategy_note': 'Defender lists these KBs as missing for the software installed on each host.',
        'filters': {'min_cve_addressed': 0, 'include_kbs': [], 'exclude_kbs': ['KB890830']},
        'summary': {
            'hosts': 4, 'compliant': 1, 'noncompliant': 2, 'not_in_defender': 1, 'kbs': 4,
            'outcomes': {'missing': 3, 'installed': 2, 'failed': 1, 'pending_reboot': 1, 'not_offered': 2},
        },
        'hosts': {
            'web01': {
                'device_id': 'a' * 40, 'computer_dns_name': 'web01.contoso.local', 'status': 'compliant',
                'kbs': {'KB5034122': 'installed', 'KB5034441': 'not_offered', 'KB5035849': 'not_offered'},
                'errors': {}, 'software_ids': ['microsoft-_-windows_11'],
            },
            HOSTILE_HOST: {
                'device_id': 'b' * 40, 'computer_dns_name': 'db01.contoso.local', 'status': 'noncompliant',
                'kbs': {'KB5034122': 'missing', 'KB5034441': 'failed', 'KB5035849': 'pending_reboot', HOSTILE_KB: 'missing'},
                'errors': {'KB5034441': '0x80240022: Installation failed | <retry> & "reboot"'},
                'software_ids': ['microsoft-_-windows_server_2022'],
            },
            'app02': {
                'device_id': 'c' * 40, 'computer_dns_name': 'app02.contoso.local', 'status': 'noncompliant',
                'kbs': {'KB5034122': 'missing', 'KB5035849': 'installed'},
                'errors': {}, 'software_ids': ['microsoft-_-windows_11'],
            },
            'ghost03': {
                'device_id': None, 'computer_dns_name': None, 'status': 'not_in_defender',
                'kbs': {}, 'errors': {}, 'software_ids': [],
            },
        },
        'kbs': {
            'KB5034122': {'id': '5034122', 'name': '2024-01 Cumulative Update for Windows 11', 'cve_addressed': 12, 'machine_missed_on': 40,
                          'url': CATALOG + 'KB5034122', 'software_ids': ['microsoft-_-windows_11'],
                          'hosts': {'missing': 2, 'installed': 1, 'failed': 0, 'pending_reboot': 0, 'not_offered': 0}},
            'KB5034441': {'id': '5034441', 'name': 'Windows Recovery Environment update', 'cve_addressed': 3, 'machine_missed_on': 7,
                          'url': CATALOG + 'KB5034441', 'software_ids': ['microsoft-_-windows_server_2022'],
                          'hosts': {'missing': 0, 'installed': 0, 'failed': 1, 'pending_reboot': 0, 'not_offered': 1}},
            'KB5035849': {'id': '5035849', 'name': '2024-03 Cumulative Update for Windows Server', 'cve_addressed': 25, 'machine_missed_on': 12,
                          'url': CATALOG + 'KB5035849', 'software_ids': ['microsoft-_-windows_server_2022'],
                          'hosts': {'missing': 0, 'installed': 1, 'failed': 0, 'pending_reboot': 1, 'not_offered': 1}},
            # A catalog URL is data too: a javascript: one must never become a link.
            HOSTILE_KB: {'id': '5099999', 'name': 'Evil <b>update</b> | & "co"', 'cve_addressed': 1, 'machine_missed_on': 2,
                         'url': 'javascript:alert(1)', 'software_ids': [],
                         'hosts': {'missing': 1, 'installed': 0, 'failed': 0, 'pending_reboot': 0, 'not_offered': 0}},
        },
    }


def empty_report():
    report = sample_report()
    report.update(hosts={}, kbs={}, summary={'hosts': 0, 'compliant': 0, 'noncompliant': 0, 'not_in_defender': 0, 'kbs': 0,
                                             'outcomes': dict.fromkeys(('missing', 'installed', 'failed', 'pending_reboot', 'not_offered'), 0)})
    return report


def reversed_report():
    """The same report with every dict in reverse insertion order."""
    def flip(value):
        return dict(reversed([(key, flip(item)) for key, item in value.items()])) if isinstance(value, dict) else value
    return flip(sample_report())
