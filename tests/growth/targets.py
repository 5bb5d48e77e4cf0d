# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The steps of the collection's data path that the growth check measures, and their inputs.

Each ``Target`` is one line: a name, ``inputs(n)`` (the arguments for ``n`` items: names, IDs,
records, hosts or KBs, built outside the measurement) and ``step`` (called as ``step(*inputs(n))``:
only this call is counted). The check counts the step's instructions at both of ``sizes`` and
fails when they grow faster than n log n. See README.md.

The inputs are synthetic, deterministic and shaped as the collection's own data (Defender's
records, the role's plan and report); ``n`` names resolve to ``n`` devices.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import functools

from ansible.parsing.dataloader import DataLoader

from ansible_collections.defender.tvm.plugins.module_utils._client import clean_ids
from ansible_collections.defender.tvm.plugins.module_utils._devices import DeviceIndex, host_names
from ansible_collections.defender.tvm.plugins.module_utils._export import DeviceFindings, _select, device_filter, kbs_across
from ansible_collections.defender.tvm.plugins.module_utils._missing_kbs import _aggregate
from ansible_collections.defender.tvm.plugins.plugin_utils._kb_patching import (
    OUTCOMES, build_plan, build_report, gate_message, outcomes_of)
from ansible_collections.defender.tvm.plugins.plugin_utils._inventory import pattern_hosts
from ansible_collections.defender.tvm.plugins.plugin_utils._kb_report import render_html, render_junit, render_markdown
from ansible_collections.defender.tvm.tests.unit.plugins.filter.report_samples import fleet_report

# n and 4n: linear steps count about 4 times the instructions, n log n about 5 times, quadratic
# ones about 16 times. (Larger sizes see a smaller quadratic part, but cost more: see README.md.)
SIZES = (400, 1600)
KB_SIZES = (200, 800)    # KBs in a report of REPORT_HOSTS hosts
REPORT_HOSTS = 120       # more than the small layout's 100 hosts: the fleet layout
KBS = 50                 # the pool of KBs that the devices miss
SOFTWARE = 20            # the pool of software (the software strategy)
GENERATED = '2026-11-27T15:00:00Z'

Target = collections.namedtuple('Target', 'name inputs step sizes known_quadratic')


def target(name, inputs, step, sizes=SIZES, known_quadratic=None):
    """``known_quadratic``: why the step is known to grow quadratically (it is then expected to fail
    the check, strictly: once it is fixed, the mark must go)."""
    return Target(name, inputs, step, sizes, known_quadratic)


# ------------------------------------------------------------------------------------ inputs

def _device_id(index):
    return '%040x' % (0xde0000 + index)


def _fqdn(index):
    return 'ws%06d.contoso.local' % index


def _kb_id(position):
    return str(5030000 + position * 17)


def _kb(index, slot):
    """Device ``index``'s ``slot``-th KB, from the pool of KBS: the first is the month's cumulative
    update, missing on every device (so a step that scans a KB's devices sees them all)."""
    return _kb_id(0 if slot == 0 else 1 + (index * 7 + slot * 13) % (KBS - 1))


def _software(index, slot):
    return 'microsoft-_-product_%02d' % ((index + slot * 7) % SOFTWARE)


def _name_of(index):
    """How a host or a request names device ``index``: an FQDN in capitals, a short name, a device
    ID, or (every fourth) a name that no device has."""
    form = index % 4
    if form == 0:
        return _fqdn(index).upper()
    if form == 1:
        return _fqdn(index).split('.')[0]
    if form == 2:
        return _device_id(index)
    return 'gone%06d' % index


def _ids(n):
    """``n`` software IDs as given: blanks around them, every tenth a repeat of an earlier one."""
    return [' microsoft-_-product_%06d ' % (index - 5 if index % 10 == 9 else index) for index in range(n)]


def _name_pairs(n):
    return [(_fqdn(index), {'id': _device_id(index), 'computerDnsName': _fqdn(index)}) for index in range(n)]


def _index_entries(n):
    """(device ID, DNS name, last seen, item) of ``n`` devices, as DeviceIndex takes them."""
    return [(device['id'], name, None, device) for name, device in _name_pairs(n)]


def _names_and_index(n):
    return [_name_of(index) for index in range(n)], DeviceIndex(_index_entries(n))


def _naming_entries(n):
    """(names, device ID, last seen, item) of ``n`` devices for host_names, every tenth sharing the
    name of the one before (a device onboarded again)."""
    entries = []
    for index in range(n):
        name = _fqdn(index - 1 if index % 10 == 9 else index)
        entries.append(([name, _device_id(index)], _device_id(index), '2024-02-%02dT06:00:00Z' % (1 + index % 28), index))
    return entries


def _inventory_groups(n):
    """The ``groups`` variable of an inventory of ``n`` hosts in windows and in KB groups."""
    hosts = ['ws-%06d' % index for index in range(n)]
    groups = {'all': hosts, 'ungrouped': [], 'windows': hosts}
    for slot in range(8):
        groups['missing_kb50341%02d' % slot] = hosts[slot::3]
    return (groups,)


def _records(n, first=0):
    """The export's records of ``n`` devices (from device ``first`` on): four findings with a KB and
    one without each; every other device's records in the files' PascalCase."""
    records = []
    for index in range(first, first + n):
        for slot in range(5):
            kb = _kb(index, slot) if slot < 4 else None
            record = {'id': '%s_%d' % (_device_id(index), slot), 'deviceId': _device_id(index), 'deviceName': _fqdn(index),
                      'osPlatform': 'Windows11', 'rbacGroupName': 'Servers', 'softwareName': _software(index, slot),
                      'cveId': 'CVE-2024-%05d' % slot, 'recommendedSecurityUpdateId': kb,
                      'recommendedSecurityUpdate': kb and 'Security update KB%s' % kb,
                      'recommendedSecurityUpdateUrl': kb and 'https://support.microsoft.com/help/%s' % kb}
            records.append(dict((key[0].upper() + key[1:], value) for key, value in record.items()) if index % 2 else record)
    return records


def _added(records, keep=None):
    findings = DeviceFindings(keep)
    for record in records:
        findings.add(record)
    return findings


@functools.lru_cache(maxsize=None)
def _findings(n):
    """Shared by the steps that only read the findings."""
    return _added(_records(n))


@functools.lru_cache(maxsize=None)
def _export_devices(n):
    findings = _findings(n)
    return [findings.device(key) for key in sorted(findings.devices)]


def _wanted(n):
    """``n`` device names as read_export takes them (clean_ids'), a few of them twice."""
    return clean_ids([_name_of(index - 3 if index % 25 == 24 else index) for index in range(n)], 'devices')


def _hosts(n):
    return dict(('host%06d' % index, _name_of(index)) for index in range(n))


def _kb_pool():
    return [{'id': _kb_id(position), 'kb': 'KB' + _kb_id(position), 'name': 'Security update', 'products_names': ['windows_11'],
             'url': None, 'machine_missed_on': 10 + position, 'cve_addressed': position % 7} for position in range(KBS)]


def _device_answers(n):
    """What missing_kbs_info answers per device (the device strategy): four KBs each."""
    pool = dict((kb['id'], kb) for kb in _kb_pool())
    return [{'machine_id': _device_id(index), 'computer_dns_name': _fqdn(index), 'requested': _name_of(index),
             'missing_kbs': [dict(pool[_kb(index, slot)], machine_missed_on=1) for slot in range(4)]}
            for index in range(n) if index % 4 != 3]


def _device_plan_inputs(n):
    return 'device', _hosts(n), {'results': _device_answers(n), 'missing_kbs': _kb_pool()}


def _software_plan_inputs(n):
    """The software strategy: SOFTWARE software, each on its share of the ``n`` devices (two each)."""
    references = dict((_software(0, slot), []) for slot in range(SOFTWARE))
    for index in range(n):
        for slot in range(2):
            references[_software(index, slot)].append({'id': _device_id(index), 'computer_dns_name': _fqdn(index)})
    software = [{'id': sid, 'machine_references': refs} for sid, refs in sorted(references.items())]
    pool = _kb_pool()
    results = [{'software_id': sid, 'missing_kbs': pool[position % KBS:position % KBS + 3]}
               for position, sid in enumerate(sorted(references))]
    return 'software', _hosts(n), {'results': results, 'missing_kbs': pool}, software


@functools.lru_cache(maxsize=None)
def _export_plan(n):
    return build_plan('export', _hosts(n), {'devices': _export_devices(n)})


def _outcomes(plan):
    """Each planned host's outcomes in install mode, every outcome in turn; every ninth KB failed."""
    outcomes = {}
    for position, (host, entry) in enumerate(sorted(plan['hosts'].items())):
        kbs = dict((kb, OUTCOMES[(position + slot) % len(OUTCOMES)]) for slot, kb in enumerate(entry['kbs']))
        outcomes[host] = {'kbs': kbs, 'errors': dict((kb, '0x80240022: Installation failed')
                                                     for kb, outcome in kbs.items() if outcome == 'failed')}
    return outcomes


@functools.lru_cache(maxsize=None)
def _report(n):
    plan = _export_plan(n)
    return build_report(plan, _outcomes(plan), 'install', GENERATED)


def _hostvars(n):
    plan = _export_plan(n)
    outcomes = dict((host, {'kb_patching_outcome': outcome}) for host, outcome in _outcomes(plan).items())
    return outcomes, sorted(plan['hosts'])


@functools.lru_cache(maxsize=None)
def _fleet(hosts, kbs):
    return fleet_report(hosts=hosts, kbs=kbs)


# ------------------------------------------------------------------------- steps of n items

def _resolve_all(names, index):
    return index.resolve_all(names)


def _pattern_hosts(groups):
    return pattern_hosts(DataLoader(), groups, 'windows:&missing_kb5034101', 'all:!ws-000001')


def _keep_each(names, devices):
    keep = device_filter(names)
    return [keep(device['id'], device['computerDnsName']) for dummy, device in devices]


def _merge(ours, theirs):
    ours.merge(theirs)
    return ours


def _each_device(findings):
    return [findings.device(key) for key in findings.devices]


def _gate_each_host(report):
    return [gate_message(report, host) for host in report['hosts']]


# ------------------------------------------------------------------------------------ canaries

def _repeats_by_list(values):
    """The old clean_ids: a list scanned per value, quadratic in C (``in`` on a list)."""
    seen = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def _repeats_by_set(values):
    seen, kept = set(), []
    for value in values:
        if value not in seen:
            seen.add(value)
            kept.append(value)
    return kept


# The check's own proof: it must flag the first and pass the second (test_growth.py). Small sizes:
# the quadratic one is nearly all scanning, 16 times as much at 4n.
CANARIES = (
    target('canary: repeats dropped by scanning a list', lambda n: (_ids(n),), _repeats_by_list, sizes=(100, 400)),
    target('canary: repeats dropped with a set', lambda n: (_ids(n),), _repeats_by_set, sizes=(100, 400)),
)

TARGETS = (
    # _client
    target('clean_ids', lambda n: (_ids(n), 'software_ids'), clean_ids),
    # _devices: name matching
    target('DeviceIndex', lambda n: (_index_entries(n),), DeviceIndex),
    target('DeviceIndex.resolve_all', _names_and_index, _resolve_all),
    target('host_names', lambda n: (_naming_entries(n),), host_names),
    # plugin_utils/_inventory: the hosts of a pattern within --limit
    target('pattern_hosts', _inventory_groups, _pattern_hosts),
    # _export: the export reader
    target('DeviceFindings.add', lambda n: (_records(n),), _added),
    target('DeviceFindings.merge', lambda n: (_added(_records(n)), _added(_records(n, n // 2))), _merge),
    target('DeviceFindings.device', lambda n: (_findings(n),), _each_device),
    target('device_filter', lambda n: (_wanted(n), _name_pairs(n)), _keep_each),
    target('kbs_across', lambda n: (_export_devices(n),), kbs_across),
    target('read_export _select', lambda n: (_findings(n), _wanted(n)), _select),
    # _missing_kbs: each KB once across the devices (the device strategy)
    target('_missing_kbs._aggregate (devices)', lambda n: (_device_answers(n), 'machine_ids', 'machine_id', True),
           _aggregate),
    # _kb_patching: the role's plan, outcomes, report and gate
    target('build_plan (export)', lambda n: ('export', _hosts(n), {'devices': _export_devices(n)}), build_plan),
    target('build_plan (device)', _device_plan_inputs, build_plan),
    target('build_plan (software)', _software_plan_inputs, build_plan),
    target('outcomes_of', _hostvars, outcomes_of),
    target('build_report (install)', lambda n: (_export_plan(n), _outcomes(_export_plan(n)), 'install', GENERATED), build_report),
    target('build_report (report mode)', lambda n: (_export_plan(n), {}, 'report', GENERATED), build_report),
    target('gate_message (once)', lambda n: (_report(n),), gate_message),
    target('gate_message (each host)', lambda n: (_report(n),), _gate_each_host),
    # _kb_report: the renderers, over many hosts (50 KBs) and over many KBs (REPORT_HOSTS hosts)
    target('render_junit (hosts)', lambda n: (_fleet(n, 50),), render_junit),
    target('render_markdown (hosts)', lambda n: (_fleet(n, 50),), render_markdown),
    target('render_html (hosts)', lambda n: (_fleet(n, 50),), render_html),
    target('render_junit (KBs)', lambda n: (_fleet(REPORT_HOSTS, n),), render_junit, sizes=KB_SIZES),
    target('render_markdown (KBs)', lambda n: (_fleet(REPORT_HOSTS, n),), render_markdown, sizes=KB_SIZES),
    target('render_html (KBs)', lambda n: (_fleet(REPORT_HOSTS, n),), render_html, sizes=KB_SIZES),
)
