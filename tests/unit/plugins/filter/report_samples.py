# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Sample kb_patching reports, as the role writes them, for the renderer tests (unit and browser)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import random

from ansible_collections.defender.tvm.plugins.plugin_utils._kb_patching import build_report

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


def reversed_report(report=None):
    """The same report (the sample's by default) with every dict in reverse insertion order."""
    def flip(value):
        return dict(reversed([(key, flip(item)) for key, item in value.items()])) if isinstance(value, dict) else value
    return flip(sample_report() if report is None else report)


FLEET_ERRORS = ('0x80240022: Installation failed', '0x8024200D: Update needs to be downloaded again',
                '0x80070005: Access is denied')


def fleet_report(hosts=10000, kbs=50, stragglers=0.05, seed=11):
    """A fleet as the role reports it (install mode, built by build_report): ``hosts`` hosts, ``kbs`` KBs.

    Hosts come in a dozen cohorts (an OS build and its KBs); most of a cohort's noncompliant hosts
    are stuck on one of three sets of its KBs, some with a failed install (one of FLEET_ERRORS)
    or a pending reboot; ``stragglers`` (a share) miss a random set of any KBs, so they make
    groups of their own. About 4% are not in Defender, about a third compliant. One host has the
    hostile name. Deterministic for the same arguments.
    """
    rng = random.Random(seed)
    catalog = {}
    for index in range(kbs):
        name = 'KB%d' % (5030000 + index * 17)
        catalog[name] = {'id': name[2:], 'name': '2024-%02d Cumulative Update for Windows (%s)' % (index % 12 + 1, name),
                         'cve_addressed': rng.randint(0, 80), 'machine_missed_on': rng.randint(1, 20000),
                         'url': CATALOG + name, 'software_ids': ['microsoft-_-windows_11']}
    names = sorted(catalog)
    cohorts = []
    for dummy in range(12):
        cohort = rng.sample(names, rng.randint(min(3, kbs), min(25, kbs)))
        cohorts.append((cohort, [rng.sample(cohort, rng.randint(1, len(cohort))) for dummy in range(3)]))
    weights = [rng.randint(1, 10) for dummy in cohorts]
    plan = {'strategy': 'software', 'hosts': {}, 'kbs': catalog}
    outcomes = {}
    for index in range(hosts):
        host = HOSTILE_HOST if index == 4242 else 'ws%05d' % index
        roll = rng.random()
        if roll < 0.04:
            plan['hosts'][host] = {'device_id': None, 'computer_dns_name': None, 'in_defender': False, 'software_ids': [], 'kbs': []}
            outcomes[host] = {'kbs': {}, 'errors': {}}
            continue
        cohort, stuck = rng.choices(cohorts, weights)[0]
        planned = list(cohort)
        result = dict((kb, rng.choice(('installed', 'not_offered'))) for kb in planned)
        errors = {}
        if roll < 0.04 + stragglers or index == 4242:
            planned = sorted(set(planned) | set(rng.sample(names, rng.randint(1, kbs))))
            result = dict((kb, 'missing') for kb in planned)
        elif roll > 0.04 + stragglers + 0.33:
            result.update((kb, 'missing') for kb in rng.choice(stuck))
            if rng.random() < 0.1 or index == 4242:
                kb = rng.choice(planned)
                result[kb], errors[kb] = 'failed', rng.choice(FLEET_ERRORS)
            elif rng.random() < 0.05:
                result[rng.choice(planned)] = 'pending_reboot'
        plan['hosts'][host] = {'device_id': '%040x' % (index + 1), 'computer_dns_name': host + '.contoso.local', 'in_defender': True,
                               'software_ids': ['microsoft-_-windows_11'], 'kbs': planned}
        outcomes[host] = {'kbs': result, 'errors': errors}
    report = build_report(plan, outcomes, 'install', '2026-11-27T15:00:00Z',
                          {'min_cve_addressed': 0, 'include_kbs': [], 'exclude_kbs': []})
    report.update(source='export (json)', data_time='2026-11-27T06:12:00Z')
    return report
