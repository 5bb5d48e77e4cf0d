# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The kb_patching role's logic: plan, per-host outcomes, report (see roles/kb_patching/CONTRACT.md).

FOR INTERNAL COLLECTION USE ONLY; the API may change in any release. Pure functions, used by the
``kb_patching_*`` filters, so the role's YAML stays declarative and the logic is unit-tested.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.validation import check_type_list

from ansible_collections.defender.tvm.plugins.module_utils._client import utc_now
from ansible_collections.defender.tvm.plugins.module_utils._devices import DeviceIndex, SharedNameError, is_device_id
from ansible_collections.defender.tvm.plugins.module_utils._export import kbs_across, read_export
from ansible_collections.defender.tvm.plugins.module_utils._missing_kbs import accept_pattern, kb_number, kb_rank, query_missing_kbs
from ansible_collections.defender.tvm.plugins.module_utils._software import query_software, windows_devices

# The outcomes of a KB on a host (CONTRACT.md), and those that leave the host non-compliant. The
# report renderers (kb_report.py) use these too.
OUTCOMES = ('missing', 'installed', 'failed', 'pending_reboot', 'not_offered')
NONCOMPLIANT = ('missing', 'failed', 'pending_reboot')

STRATEGY_NOTES = {
    'software': (
        "Software strategy: Defender's missing-KB list per software is fleet-wide, so each host is listed with "
        "every KB missing for software it has somewhere in the fleet. Right for patch targeting (Windows Update "
        "decides what applies), but it over-reports per host; use the device strategy for an exact per-host gate."),
    'device': "Device strategy: each host's own missing KBs, as Defender reports them for that device.",
    'export': ("Export strategy: each host's own missing KBs, from Defender's vulnerability export of the whole "
               "tenant, read once. As exact per host as the device strategy; the export is refreshed about every "
               "six hours."),
}


def kb_name(value):
    """``KB5034122`` from ``5034122``, ``kb5034122`` or ``KB5034122``."""
    return 'KB' + kb_number(value)


def role_arguments(values, spec):
    """The role's variables converted as its argument spec types them, or ValueError naming each problem.

    Ansible's own check of a role's argument spec validates the variables but hands the role
    the unconverted values: ``-e kb_patching_include_kbs=KB5034770`` stays a string, and a KB
    filter that iterates it sees characters. Here the values come back converted exactly as the
    spec says (a comma-separated string is a list, ``'5'`` an int, ``~`` expanded in a path),
    with the spec's defaults. Unset (None) values are left to those defaults.
    """
    given = dict((name, value) for name, value in values.items() if value is not None)
    result = ArgumentSpecValidator(spec).validate(given)
    if result.error_messages:
        raise ValueError('; '.join(result.error_messages))
    return result.validated_parameters


def _kb_list(name, value):
    """A KB filter as a list: a comma-separated string is a list, never iterated by character."""
    try:
        return check_type_list(value if value is not None else [])
    except TypeError:
        raise ValueError("%s must be a list of KBs (or a comma-separated string), got %r" % (name, value))


def _kb_filter(min_cve_addressed, include_kbs, exclude_kbs):
    include = set(kb_name(k) for k in _kb_list('include_kbs', include_kbs))
    exclude = set(kb_name(k) for k in _kb_list('exclude_kbs', exclude_kbs))

    def keep(kb):
        name = kb_name(kb['id'])
        if include and name not in include:
            return False
        return name not in exclude and kb.get('cve_addressed', 0) >= (min_cve_addressed or 0)
    return keep


# How a role user names a device by its ID, for the message of a name several devices share.
ROLE_ID_HINT = "the device ID as the host's kb_patching_device_name"


def _software_devices(software, devices):
    """Every device the software answers and ``devices`` mention, indexed for the one matching
    rule (``DeviceIndex``), and each device's software IDs."""
    software_of = {}
    references = []
    for entry in software or []:
        for ref in entry.get('machine_references') or []:
            references.append(ref)
            software_of.setdefault(ref['id'].lower(), []).append(entry['id'])
    index = DeviceIndex((d['id'], d.get('computer_dns_name'), None, d) for d in references + list(devices or []))
    return index, software_of


def build_plan(strategy, hosts, missing, software=None, min_cve_addressed=0, include_kbs=None, exclude_kbs=None,
               devices=None):
    """Which KBs each host should get, from Defender's answers.

    ``hosts`` maps inventory hostnames to Defender device names. ``missing`` is a
    ``missing_kbs_info`` result: per software (``software`` strategy, with ``software`` the
    ``software_info`` result with machine references) or per device (``device`` strategy,
    queried with the hosts' device names and ``ignore_unknown``).

    In the ``software`` strategy, ``devices`` are more devices Defender knows (machine references
    of the Windows software): a host that is one of them but that no queried software names has
    none of that software, so it is in Defender with nothing to patch, not ``not_in_defender``.

    In the ``export`` strategy, ``missing`` is a ``read_export`` result: each host gets its own
    device's KBs.

    In every strategy, a name that several devices answer to is a SharedNameError naming them.
    """
    keep = _kb_filter(min_cve_addressed, include_kbs, exclude_kbs)
    if strategy == 'export':
        return _export_plan(hosts, missing, keep)
    catalog = {}
    for kb in missing.get('missing_kbs', []):
        if keep(kb):
            catalog[kb_name(kb['id'])] = {
                'id': kb['id'], 'name': kb.get('name'), 'cve_addressed': kb.get('cve_addressed', 0),
                'machine_missed_on': kb.get('machine_missed_on', 0), 'url': kb.get('url'),
                'software_ids': list(kb.get('software_ids') or [])}
    plan_hosts = {}
    if strategy == 'software':
        kbs_of_software = dict((r['software_id'], [kb_name(k['id']) for k in r['missing_kbs']])
                               for r in missing.get('results', []))
        index, software_of = _software_devices(software, devices)
        refs = index.resolve_all(sorted(set(hosts.values())), ROLE_ID_HINT)
        for host, device_name in sorted(hosts.items()):
            ref = refs[device_name]
            their_software = sorted(software_of.get(ref['id'].lower(), [])) if ref else []
            names = set()
            for sid in their_software:
                names.update(n for n in kbs_of_software.get(sid, []) if n in catalog)
            plan_hosts[host] = _plan_host(ref and ref['id'], ref and ref.get('computer_dns_name'), names, catalog,
                                          their_software)
    elif strategy == 'device':
        by_name = dict((r['requested'].lower(), r) for r in missing.get('results', []))
        for host, device_name in sorted(hosts.items()):
            result = by_name.get(device_name.lower())
            names = set(kb_name(k['id']) for k in result['missing_kbs']) & set(catalog) if result else set()
            # a device asked for by its ID was not looked up, so its DNS name is not known
            dns_name = result and (result.get('computer_dns_name')
                                   or (None if is_device_id(result['requested']) else result['requested']))
            plan_hosts[host] = _plan_host(result and result['machine_id'], dns_name, names, catalog, [])
    else:
        raise ValueError("strategy must be software, device or export, got %r" % (strategy,))
    wanted = set(n for h in plan_hosts.values() for n in h['kbs'])
    return {'strategy': strategy, 'hosts': plan_hosts,
            'kbs': dict((n, kb) for n, kb in catalog.items() if n in wanted)}


def plan_key(strategy, hosts, software_ids=None, discover=None, min_cve_addressed=0, include_kbs=None, exclude_kbs=None,
             export_source='json'):
    """What a plan depends on, as one string: a plan with the same key answers the same question.

    Serial batches of one play reuse the plan; a second role run with other software, another
    strategy, other filters or other hosts asks Defender again.
    """
    inputs = {'strategy': strategy, 'hosts': sorted(hosts.items()), 'software_ids': list(software_ids or []),
              'discover': discover, 'min_cve_addressed': min_cve_addressed or 0,
              'include_kbs': sorted(kb_name(k) for k in _kb_list('include_kbs', include_kbs)),
              'exclude_kbs': sorted(kb_name(k) for k in _kb_list('exclude_kbs', exclude_kbs)),
              'export_source': export_source if strategy == 'export' else None}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode('utf-8')).hexdigest()


def ask_defender(client, strategy, hosts, software_ids=None, discover=None, min_cve_addressed=0, include_kbs=None,
                 exclude_kbs=None, export_source='json'):
    """Ask Defender what ``build_plan`` needs, on one client (one token), and build the plan (see
    ``_ask_defender``). A name several devices answer to says how a role user names the device."""
    try:
        return _ask_defender(client, strategy, hosts, software_ids, discover, min_cve_addressed, include_kbs,
                             exclude_kbs, export_source)
    except SharedNameError as exc:
        raise SharedNameError(exc.conflicts, ROLE_ID_HINT)


def _ask_defender(client, strategy, hosts, software_ids=None, discover=None, min_cve_addressed=0, include_kbs=None,
                  exclude_kbs=None, export_source='json'):
    """The plan, from what Defender answers.

    ``discover`` (a dict with ``vendor`` and ``name``, both optional) takes every software with
    known weaknesses from the inventory instead of ``software_ids``. In the ``software``
    strategy, the hosts' names are matched among the Windows devices as well.
    """
    empty = {'missing_kbs': [], 'results': []}
    started = utc_now()
    if strategy == 'export':
        names = sorted(set(hosts.values()))
        export = read_export(client, export_source, devices=names) if names else dict(empty, devices=[])
        plan = build_plan(strategy, hosts, export, min_cve_addressed=min_cve_addressed, include_kbs=include_kbs,
                          exclude_kbs=exclude_kbs)
        # how old the data is: the export's own time where the route gives it, else when it was read
        # (Defender refreshes the export about every six hours, so the data may be that much older)
        generated = export.get('generated_time')
        plan.update(source='export (%s)' % export_source, data_time=generated or export.get('read_started'),
                    data_time_basis='generated' if generated else 'asked')
        return plan
    if strategy == 'device':
        names = sorted(set(hosts.values()))
        missing = query_missing_kbs(client, machine_ids=names, ignore_unknown=True) if names else empty
        return dict(build_plan(strategy, hosts, missing, min_cve_addressed=min_cve_addressed, include_kbs=include_kbs,
                               exclude_kbs=exclude_kbs), source=strategy, data_time=started,
                    data_time_basis='asked')
    if strategy != 'software':
        raise ValueError("strategy must be software, device or export, got %r" % (strategy,))
    if discover is not None:
        listed = query_software(client, vendor=discover.get('vendor'), name=discover.get('name'))
        software_ids = [entry['id'] for entry in listed['software'] if entry['weaknesses'] > 0]
    software, missing = [], empty
    if software_ids:
        missing = query_missing_kbs(client, software_ids=software_ids)
        software = query_software(client, software_ids=software_ids, machine_references=True, details=False)['software']
    # Every Windows device, whatever the hosts: a host that no machine reference names has none of
    # the software (or is unknown to Defender), and a name is matched against every device that
    # may have it, so that two devices with one name are an error, not a pick. The references just
    # read go along: a queried software that is a Windows is not read again.
    read = dict((entry['id'], entry['machine_references']) for entry in software)
    devices = windows_devices(client, read)
    return dict(build_plan(strategy, hosts, missing, software, min_cve_addressed, include_kbs, exclude_kbs, devices),
                source=strategy, data_time=started, data_time_basis='asked')


def _export_plan(hosts, export, keep):
    """The plan from the export: each host its own device's KBs that pass the filters (``keep``
    judges each KB by this device's own count of the findings it fixes). The names the read
    resolved (``resolved``) are not matched again; others go through the one matching rule."""
    devices = export.get('devices', [])
    by_id = dict((d['device_id'].lower(), d) for d in devices)
    resolved = dict(export.get('resolved') or {})
    unresolved = sorted(set(hosts.values()) - set(resolved))
    if unresolved:
        index = DeviceIndex((d['device_id'], d['device_name'], None, d['device_id']) for d in devices)
        resolved.update(index.resolve_all(unresolved, ROLE_ID_HINT))
    found, plan_hosts = {}, {}
    for host, device_name in sorted(hosts.items()):
        device_id = resolved.get(device_name)
        device = by_id.get(device_id.lower()) if device_id else None
        found[host] = (device, [kb for kb in device['missing_kbs'] if keep(kb)] if device else [])
    # the catalog counts a KB once per host that gets it (machine_missed_on), as the other strategies
    catalog = dict((kb_name(kb['id']), dict(((k, v) for k, v in kb.items() if k != 'kb'), software_ids=[]))
                   for kb in kbs_across({'missing_kbs': kbs} for dummy, kbs in found.values()))
    for host, (device, kbs) in found.items():
        plan_hosts[host] = _plan_host(device and device['device_id'], device and device['device_name'],
                                      set(kb_name(kb['id']) for kb in kbs), catalog, [])
    return {'strategy': 'export', 'hosts': plan_hosts, 'kbs': catalog}


def _plan_host(device_id, dns_name, names, catalog, software_ids):
    kbs = sorted(names, key=lambda name: kb_rank(catalog[name], name))
    return {'device_id': device_id or None, 'computer_dns_name': dns_name or None, 'in_defender': bool(device_id),
            'software_ids': software_ids, 'kbs': kbs, 'accept_list': [accept_pattern({'kb': n}) for n in kbs]}


def _offered(result):
    """KB names that a win_updates result shows as still applicable (selected or filtered)."""
    names = set()
    for key in ('updates', 'filtered_updates'):
        for update in ((result or {}).get(key) or {}).values():
            names.update(kb_name(k) for k in update.get('kb') or [])
    return names


def _failures(result):
    failures = {}
    for update in ((result or {}).get('updates') or {}).values():
        if update.get('failure_hresult_code') or (update.get('installed') is False and update.get('failure_msg')):
            code = update.get('failure_hresult_code')
            text = update.get('failure_msg') or 'installation failed'
            error = '0x%08X: %s' % (int(code) & 0xFFFFFFFF, text) if code else text
            for k in update.get('kb') or []:
                failures[kb_name(k)] = error
    return failures


def host_outcomes(kbs, mode, search=None, install=None, verify=None):
    """``{'kbs': {KB: outcome}, 'errors': {KB: text}}`` for one host (see CONTRACT.md).

    ``report``: Defender's word only, every KB is ``missing``. ``check``: ``search`` is a
    ``win_updates`` search; an offered KB is ``missing``, else ``not_offered``. ``install``:
    ``search`` before, ``install``, and ``verify`` (a search after).
    """
    kbs = [kb_name(k) for k in kbs or []]
    if mode == 'report':
        return {'kbs': dict((k, 'missing') for k in kbs), 'errors': {}}
    if mode == 'check':
        if _unusable(search):
            return _all_failed(kbs, search, 'the Windows Update search failed')
        offered = _offered(search)
        return {'kbs': dict((k, 'missing' if k in offered else 'not_offered') for k in kbs), 'errors': {}}
    if mode != 'install':
        raise ValueError("mode must be report, check or install, got %r" % (mode,))
    if _unusable(search):
        return _all_failed(kbs, search, 'the Windows Update search failed')
    if _unusable(verify):
        return _all_failed(kbs, verify if verify else install, 'the host did not answer after installing')
    before, after = _offered(search), _offered(verify)
    failures = _failures(install)
    reboot_pending = bool((install or {}).get('reboot_required')) and not (install or {}).get('rebooted')
    installed_now = set(kb_name(k) for u in ((install or {}).get('updates') or {}).values() if u.get('installed')
                        for k in u.get('kb') or [])
    outcomes, errors = {}, {}
    for kb in kbs:
        if kb in failures:
            outcomes[kb], errors[kb] = 'failed', failures[kb]
        elif reboot_pending and (kb in installed_now or (kb in before and kb not in after)):
            outcomes[kb] = 'pending_reboot'
        elif kb in after:
            outcomes[kb] = 'missing'
        elif kb in before:
            outcomes[kb] = 'installed'
        else:
            outcomes[kb] = 'not_offered'
    return {'kbs': outcomes, 'errors': errors}


def _unusable(result):
    """A search that says nothing of the host's updates: none, an unreachable host, or a failed
    search (win_updates lists its updates, empty, even then; the role's searches keep their
    ``failed`` with ``ignore_errors``)."""
    return not isinstance(result, dict) or bool(result.get('unreachable')) or bool(result.get('failed'))


def _all_failed(kbs, result, reason):
    message = (result or {}).get('msg') if isinstance(result, dict) else None
    error = '%s: %s' % (reason, message) if message else reason
    return {'kbs': dict((k, 'failed') for k in kbs), 'errors': dict((k, error) for k in kbs)}


def outcomes_of(hostvars, hosts):
    """Each host's ``kb_patching_outcome`` (set by its check or install steps), read in one pass:
    hosts without one (not processed yet, or failed before) are left out. With Ansible's
    ``hostvars``, each host's variables are read as they are (``raw_get``: no template engine per
    host; the outcome is a fact, already templated)."""
    raw_get = getattr(hostvars, 'raw_get', None)
    found = {}
    for host in hosts:
        if host in hostvars:
            variables = raw_get(host) if raw_get is not None else hostvars[host]
            outcome = variables.get('kb_patching_outcome') if hasattr(variables, 'get') else None
            if outcome is not None:
                found[host] = outcome
    return found


def build_report(plan, outcomes, mode, generated, filters=None, failed_hosts=None, check_mode=False):
    """The report dict of CONTRACT.md from the plan and each processed host's outcomes.

    ``check_mode``: a dry run (``--check``) of ``install``: each host was searched, nothing was
    installed, and ``missing`` is what would be installed; the gate then fails only a host whose
    search failed.

    ``outcomes`` maps hosts to ``host_outcomes`` results; ``failed_hosts`` lists hosts that
    failed or became unreachable before they had outcomes: their planned KBs count as failed.
    In ``report`` mode, empty ``outcomes`` stand for Defender's word on every planned host, worked
    out here at once rather than by a task per host.
    """
    if not outcomes and mode == 'report':
        outcomes = dict((host, host_outcomes(entry['kbs'], 'report')) for host, entry in plan['hosts'].items())
    hosts, kb_counts = {}, {}
    for host in sorted(set(outcomes) | set(failed_hosts or [])):
        planned = plan['hosts'].get(host, {'device_id': None, 'computer_dns_name': None, 'in_defender': False,
                                           'software_ids': [], 'kbs': []})
        result = outcomes.get(host) or _all_failed(planned['kbs'], None, 'the host failed or was unreachable')
        if not planned['in_defender']:
            status = 'not_in_defender'
        elif any(o in NONCOMPLIANT for o in result['kbs'].values()):
            status = 'noncompliant'
        else:
            status = 'compliant'
        hosts[host] = {'device_id': planned['device_id'], 'computer_dns_name': planned['computer_dns_name'],
                       'status': status, 'kbs': dict(result['kbs']), 'errors': dict(result.get('errors') or {}),
                       'software_ids': list(planned.get('software_ids') or [])}
        for kb, outcome in result['kbs'].items():
            kb_counts.setdefault(kb, dict((o, 0) for o in OUTCOMES))[outcome] += 1
    kbs = {}
    unknown = {'name': None, 'cve_addressed': 0, 'machine_missed_on': 0, 'url': None, 'software_ids': []}
    for kb, counts in kb_counts.items():
        entry = dict(plan['kbs'].get(kb) or dict(unknown, id=kb[2:]))
        entry['hosts'] = counts
        kbs[kb] = entry
    statuses = [h['status'] for h in hosts.values()]
    summary = {
        'hosts': len(hosts), 'compliant': statuses.count('compliant'), 'noncompliant': statuses.count('noncompliant'),
        'not_in_defender': statuses.count('not_in_defender'), 'kbs': len(kbs),
        'outcomes': dict((o, sum(1 for h in hosts.values() for v in h['kbs'].values() if v == o)) for o in OUTCOMES),
    }
    return {'mode': mode, 'check_mode': bool(check_mode), 'strategy': plan['strategy'], 'generated': generated,
            'source': plan.get('source', plan['strategy']), 'data_time': plan.get('data_time'),
            'data_time_basis': plan.get('data_time_basis') if plan.get('data_time') else None,
            'strategy_note': STRATEGY_NOTES[plan['strategy']],
            'filters': dict(filters or {'min_cve_addressed': 0, 'include_kbs': [], 'exclude_kbs': []}),
            'summary': summary, 'hosts': hosts, 'kbs': kbs}


def _fails_gate(entry, check_mode):
    """Whether a host of the report fails the gate: it is not compliant, or in a dry run of
    ``install`` (``check_mode``), where missing KBs are what would be installed, a KB failed."""
    if check_mode:
        return 'failed' in entry['kbs'].values()
    return entry['status'] == 'noncompliant'


def _host_problems(entry, check_mode):
    """``KB5034122: missing, KB5034441: failed`` for the KBs that make a host fail the gate."""
    failing = ('failed',) if check_mode else NONCOMPLIANT
    return ', '.join('%s: %s' % (kb, outcome) for kb, outcome in sorted(entry['kbs'].items()) if outcome in failing)


def gate_message(report, host=None, limit=20):
    """Why the gate fails: for one host, or for the whole report (the first ``limit`` hosts by name).

    Empty when the host (or every host) passes: compliant or unknown to Defender, or in a dry run
    (``check_mode``) a host whose KBs would be installed.
    """
    check_mode = report.get('check_mode', False)
    context = '%s mode%s, %s strategy' % (report['mode'], ' (dry run)' if check_mode else '', report['strategy'])
    verdict = 'could not be searched' if check_mode else 'is not compliant'
    if host is not None:
        entry = report['hosts'].get(host)
        if not entry or not _fails_gate(entry, check_mode):
            return ''
        return '%s %s (%s): %s' % (host, verdict, context, _host_problems(entry, check_mode))
    failing = sorted(h for h, entry in report['hosts'].items() if _fails_gate(entry, check_mode))
    if not failing:
        return ''
    shown = ['%s (%s)' % (h, _host_problems(report['hosts'][h], check_mode)) for h in failing[:limit]]
    more = len(failing) - len(shown)
    return '%d of %d hosts %s (%s): %s%s' % (
        len(failing), report['summary']['hosts'], 'could not be searched' if check_mode else 'are not compliant',
        context, '; '.join(shown), ' and %d more' % more if more else '')
