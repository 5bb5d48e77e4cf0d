# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Defender's vulnerability export, read as a stream and aggregated per device: each device's
missing KBs for the whole tenant in a constant number of calls.

FOR INTERNAL COLLECTION USE ONLY; the API may change in any release.

Routes (get-assessment-software-vulnerabilities.md, reference export.md):
* JSON: ``GET /api/machines/SoftwareVulnerabilitiesByMachine?pageSize=N``, pages chained by
  ``@odata.nextLink`` (never ``$top``: it drops the link and silently truncates);
* files: ``GET /api/machines/SoftwareVulnerabilitiesExport`` gives SAS links to gzip-compressed JSON
  lines on blob storage, read here line by line without the bearer token;
* delta: ``GET /api/machines/SoftwareVulnerabilityChangesByMachine?sinceTime=...``.
Records are camelCase in JSON pages and PascalCase in the files, and leave out keys with no value.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import gzip
import io
import json
import re
import zlib

from ansible_collections.defender.tvm.plugins.module_utils._client import clean_ids, utc_now
from ansible_collections.defender.tvm.plugins.module_utils._devices import DeviceIndex, is_device_id
from ansible_collections.defender.tvm.plugins.module_utils._errors import (
    ConfigurationError,
    DownloadBrokenError,
    ResponseError,
    SasExpiredError,
)
from ansible_collections.defender.tvm.plugins.module_utils._json_stream import parse_odata_page
from ansible_collections.defender.tvm.plugins.module_utils._missing_kbs import accept_pattern, kb_rank

VULNERABILITY_PERMISSION = 'Vulnerability.Read.All'
SOURCES = ('json', 'files')
DEFAULT_PAGE_SIZE = 50000   # the documented default
MAX_PAGE_SIZE = 200000      # the documented maximum
DEFAULT_SAS_VALID_HOURS = 1
MAX_SAS_VALID_HOURS = 6
MAX_DELTA_DAYS = 14
_KB_ID_RE = re.compile(r'^\s*(?:KB)?\s*(\d+)\s*$', re.IGNORECASE)
_LEADING_CAPITALS_RE = re.compile(r'^[A-Z]+')
_FRACTION_RE = re.compile(r'(\.\d+)')


def camel_key(key):
    """``deviceId`` from ``DeviceId``, ``osPlatform`` from ``OSPlatform``, ``id`` from ``ID``: the
    files' PascalCase as the JSON pages' camelCase."""
    capitals = _LEADING_CAPITALS_RE.match(key)
    if not capitals:
        return key
    run = len(capitals.group(0))
    if run == len(key):
        return key.lower()
    if run == 1:
        return key[0].lower() + key[1:]
    return key[:run - 1].lower() + key[run - 1:]


_CAMEL_KEYS = {}  # PascalCase key -> camel_key(key): the files' few dozen keys, converted once each
_CAMEL_KEYS_MAX = 4096


def _camel_record(raw):
    """``dict((camel_key(k), v) for k, v in raw.items())``, with each key converted once per process
    (the files give 1,000,000 records of the same two dozen keys)."""
    keys = _CAMEL_KEYS
    record = {}
    for key, value in raw.items():
        camel = keys.get(key)
        if camel is None:
            camel = camel_key(key)
            if len(keys) < _CAMEL_KEYS_MAX:
                keys[key] = camel
        record[camel] = value
    return record


def kb_of(value):
    """The KB number of a finding's recommendedSecurityUpdateId, or None for no KB.

    The id may be a number, a string of digits with or without ``KB``, null, or a non-Microsoft
    advisory (``RHSA-2024:9315``, ``USN-7663-1``, ``ADV 200002``): only all digits are a KB.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value) if value > 0 else None
    match = _KB_ID_RE.match(str(value))
    return match.group(1) if match else None


class DeviceFindings:
    """What the export says of the devices: per device its identity and missing KBs, per KB the
    number of that device's findings it fixes and the software it fixes. Nothing else of a record
    is kept, so memory grows with devices and their KBs, not with records."""

    def __init__(self, keep=None):
        self._keep = keep           # a device filter, or None for every device
        self.devices = {}           # device ID (lowercase) -> [id, name, os, rbac group, {kb: [count, set(software)]}, no-KB count]
        self.kbs = {}               # KB number -> (name, url)
        self.records = 0

    def add(self, raw):
        self.records += 1
        record = raw if 'deviceId' in raw else _camel_record(raw)
        device_id = record.get('deviceId')
        if not device_id:
            raise ResponseError("the vulnerability export returned a record without a deviceId: %r" % (record.get('id'),))
        key = str(device_id).lower()
        device = self.devices.get(key)
        if device is None:
            name = record.get('deviceName')
            if self._keep is not None and not self._keep(key, name):
                return
            device = self.devices[key] = [key, name, record.get('osPlatform'), record.get('rbacGroupName'), {}, 0]
        kb = kb_of(record.get('recommendedSecurityUpdateId'))
        if kb is None:
            device[5] += 1  # a finding without a KB: counted, never dropped
            return
        entry = device[4].get(kb)
        if entry is None:
            entry = device[4][kb] = [0, set()]
        entry[0] += 1
        if record.get('softwareName'):
            entry[1].add(record['softwareName'])
        if kb not in self.kbs or not self.kbs[kb][0]:
            self.kbs[kb] = (record.get('recommendedSecurityUpdate'), record.get('recommendedSecurityUpdateUrl'))

    def keeping(self):
        """The device filter for more records of these findings (a later page or file): a device
        kept already stays kept, whatever name the later records give it."""
        keep, devices = self._keep, self.devices
        return None if keep is None else (lambda key, name: key in devices or keep(key, name))

    def merge(self, other):
        """Add what ``other`` read (one export file, read to its end) to these findings."""
        self.records += other.records
        for key, theirs in other.devices.items():
            ours = self.devices.get(key)
            if ours is None:
                self.devices[key] = theirs
                continue
            ours[5] += theirs[5]
            for kb, (count, software) in theirs[4].items():
                entry = ours[4].setdefault(kb, [0, set()])
                entry[0] += count
                entry[1].update(software)
        for kb, details in other.kbs.items():
            if kb not in self.kbs or not self.kbs[kb][0]:
                self.kbs[kb] = details

    def device(self, key):
        """One device as the module returns it: its missing KBs most CVEs first."""
        device_id, name, os_platform, rbac_group, kbs, without_kb = self.devices[key]
        missing = []
        for kb, (count, software) in kbs.items():
            kb_name, url = self.kbs.get(kb, (None, None))
            missing.append({'id': kb, 'kb': 'KB' + kb, 'name': kb_name, 'url': url, 'cve_addressed': count,
                            'software': sorted(software)})
        missing.sort(key=kb_rank)
        return {'device_id': device_id, 'device_name': name, 'os_platform': os_platform, 'rbac_group': rbac_group,
                'missing_kbs': missing, 'findings_without_kb': without_kb}


def device_filter(names):
    """``keep(device_id, device_name)`` for the devices that ``names`` may name (IDs exactly, names as an
    FQDN or a short name, any case), so that a filtered read keeps only those in memory."""
    ids, fqdns, shorts = set(), set(), set()
    for name in names:
        text = name.lower()
        if is_device_id(text):
            ids.add(text)
        fqdns.add(text)
        shorts.add(text.split('.')[0])

    def keep(device_id, device_name):
        if device_id in ids:
            return True
        text = (device_name or '').lower()
        return bool(text) and (text in fqdns or text.split('.')[0] in shorts)
    return keep


def _check_size(name, value, maximum):
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= maximum:
        raise ConfigurationError("%s must be between 1 and %d, got %r" % (name, maximum, value))


class _JsonPage:
    """``parse`` for ``DefenderClient.pages``: one page's records aggregated as they arrive from the
    wire, into findings of the page's own (``self.findings``), so that a page of 200,000 records is
    never held in memory. The caller merges them once the page was read to its end and is valid JSON;
    a page that is read again (a garbled body, retried) starts from empty findings."""

    def __init__(self, findings):
        self._keep = findings.keeping()  # as when the records are added one by one to ``findings``
        self.findings = None

    def __call__(self, response):
        self.findings = DeviceFindings(self._keep)
        failed = []

        def add(record):
            # As when the page is added after it was parsed: the first record that fails is raised,
            # but only once the page is known to be valid JSON (an invalid page is read again).
            if not failed:
                try:
                    self.findings.add(record)
                except Exception as exc:  # pylint: disable=broad-except
                    failed.append(exc)

        def restart():  # a second "value" in the body: json.loads would keep only that one
            self.findings = DeviceFindings(self._keep)
            del failed[:]

        body = parse_odata_page(response, add, restart)
        if failed:
            raise failed[0]
        return body


def _read_json(client, findings, page_size):
    url = client.url('machines', 'SoftwareVulnerabilitiesByMachine', pageSize=page_size)
    what = 'Reading the vulnerability export (JSON pages)'
    page = _JsonPage(findings)
    for dummy in client.pages(url, what, VULNERABILITY_PERMISSION, budget='vulnerability-export-json', parse=page):
        findings.merge(page.findings)


def _export_files(client, sas_valid_hours):
    url = client.url('machines', 'SoftwareVulnerabilitiesExport', sasValidHours=sas_valid_hours)
    body = client.get(url, 'Getting the vulnerability export files', VULNERABILITY_PERMISSION,
                      budget='vulnerability-export-files')
    files = body.get('exportFiles') if isinstance(body, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise ResponseError("Getting the vulnerability export files returned no list of exportFiles")
    return files, body.get('generatedTime')


def _file_key(url):
    """A file's identity across fresh SAS links: its URL without the query (the SAS)."""
    return url.split('?', 1)[0]


def _read_file(client, url, keep, what):
    """One export file, gunzipped and decoded line by line: its findings (merged by the caller only
    once the whole file is read, so a failed file is never counted twice)."""
    findings = DeviceFindings(keep)
    body = client.open_file(url, what)
    try:
        with gzip.GzipFile(fileobj=body, mode='rb') as lines:
            for number, line in enumerate(io.TextIOWrapper(lines, encoding='utf-8'), 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    findings.add(json.loads(line))
                except ValueError:
                    raise ResponseError("%s: line %d is not JSON" % (what, number))
    except EOFError:  # the body ended inside the gzip stream: a download that broke off
        raise DownloadBrokenError("%s broke off before its end" % what)
    except (OSError, zlib.error) as exc:
        raise ResponseError("%s: not a valid gzip file (%s)" % (what, exc))
    finally:
        body.close()
    return findings


def _download(client, url, keep, position, count):
    """``_read_file``, read again from its start when the download broke off (max_retries times)."""
    what = 'Downloading vulnerability export file %d of %d' % (position, count)
    attempts, attempt = client.settings.max_retries + 1, 1
    while True:
        try:
            return _read_file(client, url, keep, what)
        except DownloadBrokenError:
            if attempt >= attempts:
                raise DownloadBrokenError("%s broke off before its end %d times in a row" % (what, attempts))
            attempt += 1


def _read_files(client, keep, sas_valid_hours):
    """The findings of every export file and the export's generatedTime. Each file is merged once it
    is read to its end; when the links expire (403, an hour by default), one fresh list is asked for
    and the files not yet read are read from it."""
    urls, generated = _export_files(client, sas_valid_hours)
    findings, done, refreshed = DeviceFindings(keep), set(), False
    while True:
        try:
            for position, url in enumerate(urls, 1):
                key = _file_key(url)
                if key not in done:
                    findings.merge(_download(client, url, findings.keeping(), position, len(urls)))
                    done.add(key)
            return findings, generated
        except SasExpiredError:
            if refreshed:
                raise
            refreshed = True
            urls, fresh = _export_files(client, sas_valid_hours)
            if fresh != generated:
                # Defender made a newer export meanwhile: other files, so start again on those.
                findings, done, generated = DeviceFindings(keep), set(), fresh


def read_export(client, source='json', devices=None, page_size=DEFAULT_PAGE_SIZE,
                sas_valid_hours=DEFAULT_SAS_VALID_HOURS):
    """Every device's missing KBs from the vulnerability export, or only those of ``devices``
    (IDs or computer names). Returns ``devices``, ``missing_kbs`` (each KB once across them, with
    ``machine_missed_on``), ``accept_list``, ``generated_time`` (the files route's snapshot time;
    None on the JSON route, which gives none), ``read_started``, ``records_read``, ``not_found``
    and ``resolved`` (each of ``devices`` to the device ID it named, None for none; empty without
    ``devices``).
    """
    if source not in SOURCES:
        raise ConfigurationError("source must be json or files, got %r" % (source,))
    _check_size('page_size', page_size, MAX_PAGE_SIZE)
    _check_size('sas_valid_hours', sas_valid_hours, MAX_SAS_VALID_HOURS)
    wanted = clean_ids(devices, 'devices') if devices is not None else None
    keep = device_filter(wanted) if wanted is not None else None
    started = utc_now()
    if source == 'json':
        findings, generated = DeviceFindings(keep), None
        _read_json(client, findings, page_size)
    else:
        findings, generated = _read_files(client, keep, sas_valid_hours)
    keys, not_found, resolved = _select(findings, wanted)
    result = [findings.device(key) for key in keys]
    missing = kbs_across(result)
    return {'devices': result, 'missing_kbs': missing, 'accept_list': [accept_pattern(kb) for kb in missing],
            'generated_time': generated, 'read_started': started, 'records_read': findings.records,
            'not_found': not_found, 'resolved': resolved}


def _select(findings, wanted):
    """The devices that ``wanted`` names (in its order, each once), the names no device has, and
    which device (key) each name resolved to (None for none). A name that several devices share is
    a SharedNameError naming them."""
    if wanted is None:
        return sorted(findings.devices, key=lambda key: ((findings.devices[key][1] or '').lower(), key)), [], {}
    index = DeviceIndex((d[0], d[1], None, d[0]) for d in findings.devices.values())
    resolved = index.resolve_all(wanted)
    keys, not_found, seen = [], [], set()
    for name in wanted:
        key = resolved[name]
        if key is None:
            not_found.append(name)
        elif key not in seen:
            seen.add(key)
            keys.append(key)
    return keys, not_found, resolved


def kbs_across(devices):
    """Each KB of the devices' ``missing_kbs`` once, with how many of them miss it (a device listed
    twice counts twice), the largest of their ``cve_addressed`` and the software it fixes, in the
    one KB order."""
    merged = {}
    for device in devices:
        for kb in device['missing_kbs']:
            entry = merged.get(kb['id'])
            if entry is None:
                entry = merged[kb['id']] = {'id': kb['id'], 'kb': kb['kb'], 'name': kb['name'], 'url': kb['url'],
                                            'cve_addressed': 0, 'machine_missed_on': 0, 'software': []}
            entry['machine_missed_on'] += 1
            entry['cve_addressed'] = max(entry['cve_addressed'], kb['cve_addressed'])
            entry['software'] = sorted(set(entry['software']) | set(kb['software']))
    return sorted(merged.values(), key=kb_rank)


def parse_time(name, value):
    """An ISO 8601 time (UTC unless it says otherwise) as an aware datetime; ConfigurationError
    naming ``name`` if it is none. Defender writes up to 7 fractional digits, Python reads 6."""
    text = _FRACTION_RE.sub(lambda m: m.group(1)[:7], str(value).strip())
    if text[-1:] in ('Z', 'z'):
        text = text[:-1] + '+00:00'
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigurationError("%s must be an ISO 8601 time such as 2024-02-13T06:00:00Z, got %r" % (name, value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc)


def read_changes(client, since, devices=None, page_size=DEFAULT_PAGE_SIZE):
    """Per device, the KBs that became missing and the KBs that were fixed since ``since`` (the
    export's delta, at most 14 days back), with the duplicates of RBAC moves cancelled out.

    A device that moves between device groups appears twice for each finding: Fixed in the old
    group and New in the new one, at the same time. Such a pair is no change. Of the rest, the
    latest New or Fixed of a finding counts; a KB became missing when one of its findings is New,
    and was fixed when every changed finding of it is Fixed.
    """
    _check_size('page_size', page_size, MAX_PAGE_SIZE)
    since_time = parse_time('since', since).strftime('%Y-%m-%dT%H:%M:%SZ')
    wanted = clean_ids(devices, 'devices') if devices is not None else None
    keep = device_filter(wanted) if wanted is not None else None
    started = utc_now()
    findings = DeviceFindings(keep)   # identities of the devices seen, and their KB details
    events, records = {}, 0
    url = client.url('machines', 'SoftwareVulnerabilityChangesByMachine', sinceTime=since_time, pageSize=page_size)
    for page in client.pages(url, 'Reading the vulnerability changes', VULNERABILITY_PERMISSION,
                             budget='vulnerability-export-json'):
        for raw in page:
            records += 1
            record = raw if 'deviceId' in raw else _camel_record(raw)
            kb = kb_of(record.get('recommendedSecurityUpdateId'))
            status = record.get('status')
            if kb is None or status not in ('New', 'Fixed'):
                continue  # no KB, or an Updated finding (CVSS, paths...): no change of what is missing
            findings.add(record)
            if not record.get('deviceId') or str(record['deviceId']).lower() not in findings.devices:
                continue
            key = (str(record['deviceId']).lower(), record.get('softwareVendor'), record.get('softwareName'),
                   record.get('softwareVersion'), record.get('cveId'), kb)
            group = record.get('rbacGroupId', record.get('rbacGroupName'))
            events.setdefault(key, []).append((str(record.get('eventTimestamp') or ''), status, group))
    changes = {}  # device -> kb -> [(net status, its time)]
    latest = ''
    for (device, dummy, dummy2, dummy3, dummy4, kb), found in events.items():
        latest = max([latest] + [when for when, dummy5, dummy6 in found])
        net = _net_status(found)
        if net is not None:
            changes.setdefault(device, {}).setdefault(kb, []).append(net)
    keys, not_found, dummy = _select(findings, wanted)
    result = []
    for key in keys:
        device = findings.device(key)
        new, fixed = [], []
        for kb in device['missing_kbs']:
            nets = changes.get(key, {}).get(kb['id'], [])
            news = [when for status, when in nets if status == 'New']
            if news:
                new.append(_change(kb, news))
            elif nets:
                fixed.append(_change(kb, [when for dummy, when in nets]))
        if new or fixed:
            new.sort(key=kb_rank)
            fixed.sort(key=kb_rank)
            result.append({'device_id': device['device_id'], 'device_name': device['device_name'],
                           'os_platform': device['os_platform'], 'rbac_group': device['rbac_group'],
                           'new_kbs': new, 'fixed_kbs': fixed,
                           'event_time': max(k['event_time'] or '' for k in new + fixed) or None})
    return {'changes': result, 'since': since_time, 'read_started': started, 'records_read': records,
            'latest_event_time': _iso(latest) if latest else None, 'not_found': not_found}


def _net_status(events):
    """The finding's net change over the range and its time: (``New``, time) when it was not missing
    before and is now, (``Fixed``, time) when it was missing before and is not now, else None. RBAC
    moves (a Fixed and a New at the same time, in different groups) cancel out first; then the
    first event says what the finding was before (a New: not missing, a Fixed: missing) and the
    last what it is now, so a finding that became missing and was fixed again inside the range (or
    the other way round) is no change."""
    remaining = sorted(events)
    for fixed in [e for e in remaining if e[1] == 'Fixed']:
        twin = next((e for e in remaining if e[1] == 'New' and e[0] == fixed[0] and e[2] != fixed[2]), None)
        if twin is not None and fixed in remaining:
            remaining.remove(fixed)
            remaining.remove(twin)
    if not remaining:
        return None
    before, now = remaining[0][1] == 'Fixed', remaining[-1][1] == 'New'
    if now == before:
        return None
    return ('New' if now else 'Fixed'), remaining[-1][0]


def _change(kb, times):
    """A KB of a change: ``cve_addressed`` = how many of the device's findings it fixes changed so,
    ``event_time`` = when the last of them did."""
    return {'id': kb['id'], 'kb': kb['kb'], 'name': kb['name'], 'url': kb['url'], 'software': kb['software'],
            'cve_addressed': len(times), 'event_time': _iso(max(times)) if max(times) else None}


def _iso(text):
    """A delta's eventTimestamp (``2024-02-19 06:00:00`` or ISO 8601) as ``2024-02-19T06:00:00Z``."""
    try:
        return parse_time('eventTimestamp', text).strftime('%Y-%m-%dT%H:%M:%SZ')
    except ConfigurationError:
        return text
