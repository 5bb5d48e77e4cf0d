# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Renderers for the kb_patching report dict (roles/kb_patching/CONTRACT.md): JUnit, Markdown, HTML,
and the report files (``write_reports``).

Pure functions of the report, deterministic for the same input (hosts and KBs sorted). Host and KB
names come from inventories and the Defender API, so every renderer treats all data as untrusted.

Two layouts, both leading with what a person acts on (counts by status, the KBs that matter most):
a small report (``small_report``: at most MATRIX_HOSTS hosts and MATRIX_CELLS host x KB cells)
keeps the per-host detail, the host x KB matrix in HTML and a row per noncompliant host in
Markdown; a larger one groups the noncompliant hosts by what they still need (``host_groups``),
lists the hosts Defender does not know, only counts the compliant ones, and points to
kb_patching.json for the per-host detail. Both stay bounded at fleet scale (10,000 hosts x 50 KBs:
HTML under 5 MB, Markdown under 200 lines); JUnit keeps one test case per host.

FOR INTERNAL COLLECTION USE ONLY; the API may change in any release.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from html import escape
from urllib.parse import quote, urlsplit

from ansible_collections.defender.tvm.plugins.module_utils._missing_kbs import kb_rank
from ansible_collections.defender.tvm.plugins.plugin_utils._kb_patching import NONCOMPLIANT, OUTCOMES

OUTCOME_LABELS = {'missing': 'Missing', 'installed': 'Installed', 'failed': 'Failed',
                  'pending_reboot': 'Pending reboot', 'not_offered': 'Not offered'}
# A symbol next to each label, so the table also reads at a glance without colour.
OUTCOME_SYMBOLS = {'missing': '!', 'installed': '\u2713', 'failed': '\u2717', 'pending_reboot': '\u21bb', 'not_offered': '\u2013'}
STATUS_LABELS = {'compliant': 'Compliant', 'noncompliant': 'Noncompliant', 'not_in_defender': 'Not in Defender'}
FIGURES = (('hosts', 'Hosts'), ('compliant', 'Compliant'), ('noncompliant', 'Noncompliant'),
           ('not_in_defender', 'Not in Defender'), ('kbs', 'KBs'))
WORST_LIMIT = 10
TITLE = 'KB patching report'
JSON_NAME = 'kb_patching.json'

# The host x KB matrix (HTML) and the row per noncompliant host (Markdown) while they read: up to
# 100 hosts and 2,500 host x KB cells (100 hosts x 25 KBs, 50 x 50). Beyond, the grouped layout.
MATRIX_HOSTS = 100
MATRIX_CELLS = 2500
# Bounds of the grouped layout: whatever the fleet, the page and the summary stay readable.
HTML_KB_ROWS = 100          # rows of the ranked KB table
HTML_GROUPS = 50            # groups of noncompliant hosts shown, each with its KBs and hosts
HTML_HOSTS_SHOWN = 100      # host names shown in a list before "and N more" (the rest collapsed)
HTML_ERROR_ROWS = 20        # rows of the install errors table, by KB and error
MARKDOWN_KB_ROWS = 25
MARKDOWN_GROUPS = 15
MARKDOWN_HOSTS_SHOWN = 10   # host names in a group's cell or a list before "and N more"
MARKDOWN_ERROR_ROWS = 10
# A JUnit failure's message is the line CI systems show in a list: its first few KBs (the text has them all).
JUNIT_MESSAGE_KBS = 5

# XML 1.0 cannot carry most control characters, not even escaped; a host name with one must not
# make the whole JUnit file unreadable for the CI system.
_XML_INVALID = re.compile('[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]')
# CommonMark lets any ASCII punctuation be backslash-escaped; escape only what can start markup
# anywhere (emphasis, code, links, HTML, entities, strikethrough) or break a table cell. With
# the brackets escaped, parentheses and "!" cannot form a link or an image, so "(KB5033909)" stays.
_MARKDOWN_INLINE = re.compile(r'([\\`*_\[\]<>|~&])')
# ... and what starts a block only at the start of a value: a heading, list item, quote or rule.
_MARKDOWN_LEADING = re.compile(r'^(?:([#+=>-])|(\d+)([.)]))')


def _count(value):
    """Counts may be missing or null in a hand-made report: treat them as 0 rather than fail."""
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _text(value):
    return '' if value is None else str(value)


def _hosts(report):
    return sorted((_text(name), host or {}) for name, host in (report.get('hosts') or {}).items())


def _kbs(report):
    return sorted((_text(name), kb or {}) for name, kb in (report.get('kbs') or {}).items())


def _summary(report):
    summary = report.get('summary') or {}
    outcomes = summary.get('outcomes') or {}
    figures = dict((key, _count(summary.get(key))) for key, dummy in FIGURES)
    return figures, dict((outcome, _count(outcomes.get(outcome))) for outcome in OUTCOMES)


def _host_kbs(host, outcomes):
    """The host's KBs with one of the given outcomes, sorted."""
    return sorted(_text(kb) for kb, outcome in (host.get('kbs') or {}).items() if outcome in outcomes)


def _safe_url(url):
    """Only http(s) links: a catalog URL is data too, and must not become javascript: or the like."""
    url = _text(url).strip()
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ('http', 'https') else None


def ranked_kbs(report):
    """The KBs, those that matter most first (the collection's one KB order)."""
    return sorted(_kbs(report), key=lambda item: kb_rank(
        {'cve_addressed': _count(item[1].get('cve_addressed')), 'machine_missed_on': _count(item[1].get('machine_missed_on'))},
        item[0]))


def worst_kbs(report, limit=WORST_LIMIT):
    """The first ``limit`` of ``ranked_kbs``."""
    return ranked_kbs(report)[:limit]


def _filters_text(report, esc):
    """The report's KB filters in one line, each KB name escaped with esc."""
    filters = report.get('filters') or {}
    parts = ['min CVEs addressed %d' % _count(filters.get('min_cve_addressed'))]
    for key, label in (('include_kbs', 'include'), ('exclude_kbs', 'exclude')):
        if filters.get(key):
            parts.append('%s %s' % (label, ', '.join(esc(kb) for kb in filters[key])))
    return '; '.join(parts)


def _n(value):
    """A count for people: 10,000."""
    return '{:,}'.format(value)


def _plural(count, word, words=None):
    return '%s %s' % (_n(count), word if count == 1 else (words or word + 's'))


def _share(part, whole):
    """``part`` as a percentage of ``whole``, one decimal: 65.1%."""
    return '%.1f%%' % (100.0 * part / whole) if whole else '0.0%'


def _meta(report):
    """(key, label, value) of what the report is: mode, strategy, and, when the report has them,
    Defender's data source and the time its data was generated or read; then when it was written."""
    mode = report.get('mode')
    if report.get('check_mode'):
        mode = '%s, dry run (--check): nothing was installed; "missing" would be installed' % mode
    items = [('mode', 'Mode', mode), ('strategy', 'Strategy', report.get('strategy'))]
    if report.get('source'):
        items.append(('source', 'Source', report['source']))
    if report.get('data_time'):
        # the export's own time (files route), or when Defender was asked: the export it answers
        # from is refreshed about every six hours, so its data may be up to that much older
        label = 'Defender data generated' if report.get('data_time_basis') == 'generated' else 'Defender asked at'
        items.append(('data_time', label, report['data_time']))
    items.append(('generated', 'Generated', report.get('generated')))
    return items


def small_report(report):
    """True when the per-host layout still reads: at most MATRIX_HOSTS hosts and MATRIX_CELLS host x KB cells."""
    hosts, kbs = len(report.get('hosts') or {}), len(report.get('kbs') or {})
    return hosts <= MATRIX_HOSTS and hosts * kbs <= MATRIX_CELLS


def _kb_order(report):
    """A sort key for KB names in the one KB order; KBs the report does not describe come last, by name."""
    index = dict((name, position) for position, (name, dummy) in enumerate(ranked_kbs(report)))
    last = len(index)
    return lambda name: (index.get(name, last), name)


def _by_status(report, status):
    return [name for name, host in _hosts(report) if host.get('status') == status]


def host_groups(report):
    """The noncompliant hosts grouped by exactly what they still need, largest groups first.

    A list of ``(need, hosts)``: ``need`` is a tuple of ``(outcome, KBs)`` for each non-compliant
    outcome (missing, failed, pending_reboot) the group's hosts have, the KBs in the one KB order
    (empty for a host that says noncompliant but lists no such KB); ``hosts`` are sorted. Every
    noncompliant host is in exactly one group. Ties in size go by the need, in the KB order (an
    empty need last), so the order is deterministic.
    """
    order = _kb_order(report)
    groups = {}
    for name, host in _hosts(report):
        if host.get('status') != 'noncompliant':
            continue
        by_outcome = dict((outcome, []) for outcome in NONCOMPLIANT)
        for kb, outcome in (host.get('kbs') or {}).items():
            if outcome in by_outcome:
                by_outcome[outcome].append(_text(kb))
        need = tuple((outcome, tuple(sorted(by_outcome[outcome], key=order))) for outcome in NONCOMPLIANT if by_outcome[outcome])
        groups.setdefault(need, []).append(name)

    def rank(item):
        need, hosts = item
        return (-len(hosts), not need, tuple((NONCOMPLIANT.index(outcome), tuple(order(kb) for kb in kbs)) for outcome, kbs in need))
    return sorted(groups.items(), key=rank)


def error_groups(report):
    """The failed installs grouped by KB and error text, most hosts first: a list of ``((kb, error), hosts)``."""
    order = _kb_order(report)
    groups = {}
    for name, host in _hosts(report):
        errors = host.get('errors') or {}
        for kb, outcome in (host.get('kbs') or {}).items():
            if outcome == 'failed':
                groups.setdefault((_text(kb), ' '.join(_text(errors.get(kb)).split())), []).append(name)
    return sorted(groups.items(), key=lambda item: (-len(item[1]), order(item[0][0]), item[0][1]))


def _first(names, limit, esc):
    """``a, b, c and 1,234 more``: the first ``limit`` names, escaped with esc."""
    shown = ', '.join(esc(name) for name in names[:limit])
    more = len(names) - limit
    return '%s and %s more' % (shown, _n(more)) if more > 0 else shown


def _kb_host_counts(kb):
    counts = kb.get('hosts') or {}
    return dict((outcome, _count(counts.get(outcome))) for outcome in OUTCOMES)


# ---------------------------------------------------------------------------------------- JUnit

def _xml(value):
    return _XML_INVALID.sub('?', _text(value))


def _failure_lines(host, order):
    """``KB: outcome (error)`` for each KB that leaves the host non-compliant, in the one KB order."""
    errors = host.get('errors') or {}
    lines = []
    for kb, outcome in sorted(((_text(kb), _text(outcome)) for kb, outcome in (host.get('kbs') or {}).items()), key=lambda item: order(item[0])):
        if outcome in NONCOMPLIANT:
            error = errors.get(kb) if outcome == 'failed' else None
            lines.append('%s: %s%s' % (kb, outcome, ' (%s)' % _text(error) if error else ''))
    return lines


def render_junit(report):
    """JUnit XML: one test case per host; noncompliant fails, not in Defender is skipped.

    Lean at fleet scale: a passing or skipped case is one element; a failing one carries only its
    non-compliant KBs, worst first (the message the first few, the text all, with the install errors).
    """
    strategy = _text(report.get('strategy'))
    hosts = _hosts(report)
    failures = sum(1 for dummy, host in hosts if host.get('status') == 'noncompliant')
    skipped = sum(1 for dummy, host in hosts if host.get('status') == 'not_in_defender')
    counts = {'tests': str(len(hosts)), 'failures': str(failures), 'errors': '0', 'skipped': str(skipped)}
    # Some CI systems only read <testsuites>, others only its single <testsuite>: give both the counts.
    root = ET.Element('testsuites', dict(name='kb_patching', **counts))
    suite = ET.SubElement(root, 'testsuite', dict(name='kb_patching', **counts))
    properties = ET.SubElement(suite, 'properties')
    for key, dummy, value in _meta(report):
        ET.SubElement(properties, 'property', name=key, value=_xml(value))
    classname = _xml('kb_patching.' + strategy)
    order = _kb_order(report)
    for name, host in hosts:
        case = ET.SubElement(suite, 'testcase', classname=classname, name=_xml(name))
        status = host.get('status')
        if status == 'not_in_defender':
            ET.SubElement(case, 'skipped', message='not in Defender: no Defender device matched this host')
        elif status == 'noncompliant':
            lines = _failure_lines(host, order)
            shown = '; '.join(lines[:JUNIT_MESSAGE_KBS]) or 'see the report'
            if len(lines) > JUNIT_MESSAGE_KBS:
                shown += '; and %d more' % (len(lines) - JUNIT_MESSAGE_KBS)
            failure = ET.SubElement(case, 'failure', type='noncompliant', message=_xml('noncompliant: ' + shown))
            failure.text = _xml('\n'.join(lines))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding='unicode') + '\n'


# ------------------------------------------------------------------------------------- Markdown

def _md(value):
    """Escape data for Markdown; newlines would end a table row, so they become spaces."""
    text = _MARKDOWN_INLINE.sub(r'\\\1', ' '.join(_text(value).split()))
    return _MARKDOWN_LEADING.sub(lambda m: '\\' + m.group(1) if m.group(1) else m.group(2) + '\\' + m.group(3), text)


def _md_link(text, url):
    url = _safe_url(url)
    # Percent-encode what would end the link or the table cell; keep the URL's own structure.
    return '[%s](%s)' % (_md(text), quote(url, safe=":/?#@!$&'*+,;=%~")) if url else _md(text)


def _md_table(header, rows, align=None):
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join(align or ['---'] * len(header)) + '|']
    lines.extend('| ' + ' | '.join(row) + ' |' for row in rows)
    return lines


def _md_noncompliant_rows(hosts):
    """Small reports: one row per noncompliant host, its KBs per outcome, failed ones with their error."""
    rows = []
    for name, host in hosts:
        if host.get('status') != 'noncompliant':
            continue
        errors = host.get('errors') or {}
        row = [_md(name)]
        for outcome in OUTCOMES:
            kbs = _host_kbs(host, (outcome,))
            if outcome == 'failed':
                row.append(', '.join(_md(kb) + (' (%s)' % _md(errors[kb]) if errors.get(kb) else '') for kb in kbs))
            else:
                row.append(', '.join(_md(kb) for kb in kbs))
        rows.append(row)
    return _md_table(['Host'] + [OUTCOME_LABELS[outcome] for outcome in OUTCOMES], rows) if rows else ['None.']


def _md_groups(report):
    """Larger reports: the noncompliant hosts by what they still need, largest groups first."""
    groups = host_groups(report)
    if not groups:
        return ['None.']
    shown = groups[:MARKDOWN_GROUPS]
    out = ['%s in %s; the hosts of a group need exactly the same KBs. Largest groups first:'
           % (_plural(sum(len(names) for dummy, names in groups), 'host'), _plural(len(groups), 'group')), '']
    rows = []
    for need, names in shown:
        cells = [', '.join(_md(kb) for kb in dict(need).get(outcome, ())) for outcome in NONCOMPLIANT]
        if not need:
            cells[0] = 'no KB listed'
        rows.append([_n(len(names))] + cells + [_first(names, MARKDOWN_HOSTS_SHOWN, _md)])
    out += _md_table(['Hosts'] + [OUTCOME_LABELS[outcome] for outcome in NONCOMPLIANT] + ['First hosts'], rows,
                     ['--:', '---', '---', '---', '---'])
    rest = groups[len(shown):]
    if rest:
        out += ['', 'And %s in %s smaller groups: see `%s`.' % (_plural(sum(len(names) for dummy, names in rest), 'host'),
                                                                _n(len(rest)), JSON_NAME)]
    return out


def _md_errors(groups):
    """Larger reports: the most common install errors, by KB and error text."""
    rows = [[_md(kb), _md(error) or 'no error text', _n(len(names)), _first(names, MARKDOWN_HOSTS_SHOWN, _md)]
            for (kb, error), names in groups[:MARKDOWN_ERROR_ROWS]]
    out = _md_table(['KB', 'Error', 'Hosts', 'First hosts'], rows, ['---', '---', '--:', '---'])
    if len(groups) > MARKDOWN_ERROR_ROWS:
        out += ['', 'And %s other errors: see `%s`.' % (_n(len(groups) - MARKDOWN_ERROR_ROWS), JSON_NAME)]
    return out


def render_markdown(report):
    """A summary to paste into a ticket (CommonMark with GitHub-style tables), under 200 lines at any size."""
    figures, outcomes = _summary(report)
    hosts = _hosts(report)
    small = small_report(report)
    out = ['# ' + TITLE, '',
           ' · '.join('**%s:** %s' % (label, _md(value)) for dummy, label, value in _meta(report)),
           '', '**Filters:** ' + _filters_text(report, _md), '']
    if report.get('strategy_note'):
        out += ['> ' + _md(report['strategy_note']), '']
    out += ['Full per-host detail (every host\'s KBs, outcomes, errors and device): `%s`.' % JSON_NAME, '']

    out += ['## Summary', '']
    rows = [[label, _n(figures[key])] for key, label in FIGURES]
    rows += [['Outcome: ' + OUTCOME_LABELS[outcome], _n(outcomes[outcome])] for outcome in OUTCOMES]
    out += _md_table(['Figure', 'Count'], rows, ['---', '--:']) + ['']

    out += ['## Worst KBs', '']
    ranked = ranked_kbs(report)
    if ranked:
        rows = []
        for name, kb in ranked[:MARKDOWN_KB_ROWS]:
            here = _kb_host_counts(kb)
            rows.append([_md_link(name, kb.get('url')), _md(kb.get('name')), _n(_count(kb.get('cve_addressed'))),
                         _n(_count(kb.get('machine_missed_on'))), _n(here['missing']), _n(here['failed']), _n(here['pending_reboot'])])
        out += _md_table(['KB', 'Name', 'CVEs addressed', 'Devices missing it', 'Hosts missing it here', 'Failed here', 'Pending reboot here'],
                         rows, ['---', '---', '--:', '--:', '--:', '--:', '--:'])
        if len(ranked) > MARKDOWN_KB_ROWS:
            out += ['', 'And %s more KBs, fewer CVEs addressed: see `%s`.' % (_n(len(ranked) - MARKDOWN_KB_ROWS), JSON_NAME)]
        out += ['']
    else:
        out += ['None.', '']

    out += ['## Noncompliant hosts', '']
    out += (_md_noncompliant_rows(hosts) if small else _md_groups(report)) + ['']
    errors = [] if small else error_groups(report)
    if errors:
        out += ['## Install errors', ''] + _md_errors(errors) + ['']

    out += ['## Hosts not in Defender', '']
    absent = _by_status(report, 'not_in_defender')
    if small:
        out += ['- ' + _md(name) for name in absent] or ['None.']
    else:
        out += ['%s: %s.' % (_plural(len(absent), 'host'), _first(absent, MARKDOWN_HOSTS_SHOWN, _md)) if absent else 'None.']
        out += ['', '## Compliant hosts', '',
                '%s, listed in `%s`.' % (_plural(len(_by_status(report, 'compliant')), 'host'), JSON_NAME)]
    return '\n'.join(out) + '\n'


# ----------------------------------------------------------------------------------------- HTML

_CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #ffffff; --panel: #f6f8fa; --bar: #b3401a;
        --compliant: #2f8f4e; --noncompliant: #c93c37; --not_in_defender: #8c959f; }
* { box-sizing: border-box; }
body { margin: 0; padding: 2rem; color: var(--fg); background: var(--bg);
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", "DejaVu Sans", Arial, sans-serif; }
main, header { max-width: 72rem; margin: 0 auto; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 2rem 0 .75rem; padding-bottom: .25rem; border-bottom: 1px solid var(--line); }
.meta, .note, .empty, .lead, caption { color: var(--muted); }
.meta { margin: 0; }
.note { margin: .5rem 0 0; font-style: italic; }
.lead { margin: 0 0 .75rem; }
.figures, .outcomes { display: flex; flex-wrap: wrap; gap: .75rem; margin: 0; padding: 0; }
.figure { min-width: 8.5rem; padding: .6rem .9rem; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; }
.figure dt { font-size: .8rem; color: var(--muted); text-transform: uppercase; letter-spacing: .03em; }
.figure dd { margin: 0; font-size: 1.7rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.figure dd.share { font-size: .85rem; font-weight: normal; color: var(--muted); }
#figure-compliant { border-left: 4px solid var(--compliant); }
#figure-noncompliant { border-left: 4px solid var(--noncompliant); }
#figure-not_in_defender { border-left: 4px solid var(--not_in_defender); }
.outcomes { margin-top: .75rem; }
.outcomes .figure { min-width: 7rem; padding: .35rem .7rem; }
.outcomes .figure dd { font-size: 1.2rem; }
.status-bar { display: block; width: 100%; max-width: 56rem; height: 14px; margin-top: .75rem; border-radius: 4px; }
.status-bar .st-compliant { fill: var(--compliant); }
.status-bar .st-noncompliant { fill: var(--noncompliant); }
.status-bar .st-not_in_defender { fill: var(--not_in_defender); }
.chart { width: 100%; max-width: 62rem; height: auto; }
.chart text { font-size: 13px; fill: var(--fg); }
.chart .bar { fill: var(--bar); }
.chart .value { fill: var(--muted); }
.scroll { overflow-x: auto; border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
caption { text-align: left; padding: .5rem .75rem; }
th, td { padding: .4rem .6rem; border-top: 1px solid var(--line); text-align: left; white-space: nowrap; vertical-align: top; }
thead th { background: var(--panel); border-top: 0; white-space: normal; max-width: 12rem; }
thead th a { white-space: nowrap; }
thead th small, th[scope=row] small { display: block; font-weight: normal; color: var(--muted); }
th[scope=row] { font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.wrap { white-space: normal; }
td.name { max-width: 28rem; overflow: hidden; text-overflow: ellipsis; color: var(--muted); }
#all-kbs { margin-top: .75rem; }
#all-kbs .scroll { border: 0; margin: 0; }
.o, .s { display: inline-block; padding: .05rem .5rem; border-radius: 999px; font-weight: 600; font-size: .85rem; }
.o-missing { background: #fde2c4; color: #7a3e00; }
.o-failed { background: #f9d0d0; color: #8a1111; }
.o-pending_reboot { background: #fff0b3; color: #5f4a00; }
.o-installed { background: #d2f0d9; color: #145228; }
.o-not_offered { background: #e6e9ed; color: #3d444d; }
.o-none { color: var(--muted); }
.s-noncompliant { background: #f9d0d0; color: #8a1111; }
.s-compliant { background: #d2f0d9; color: #145228; }
.s-not_in_defender { background: #e6e9ed; color: #3d444d; }
.errors { padding-left: 1.25rem; }
.errors code, td code { white-space: pre-wrap; }
details { margin: 0 0 .5rem; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); }
details > summary { cursor: pointer; padding: .45rem .75rem; background: var(--panel); border-radius: 6px; }
details[open] > summary { border-bottom: 1px solid var(--line); border-radius: 6px 6px 0 0; }
details > :not(summary) { margin-left: .75rem; margin-right: .75rem; }
details details { margin-top: .25rem; }
.count { font-weight: 600; font-variant-numeric: tabular-nums; }
.need { margin: .5rem .75rem; }
.need .o { margin-right: .35rem; }
ul.hosts { display: flex; flex-wrap: wrap; gap: .2rem .9rem; list-style: none; padding: 0; margin: .5rem .75rem;
           font: .85rem/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; }
.pointer { margin: 1.5rem 0 0; padding: .6rem .9rem; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; }
footer { max-width: 72rem; margin: 2rem auto 0; color: var(--muted); font-size: .8rem; }
@media print { body { padding: 0; } .scroll { overflow: visible; border: 0; } }
"""
STATUSES = ('compliant', 'noncompliant', 'not_in_defender')


def _e(value):
    return escape(_text(value), quote=True)


def _html_figures(css_class, label, items):
    cells = ''.join('<div class="figure" id="figure-%s"><dt>%s</dt><dd>%s</dd>%s</div>' % (
        _e(key), _e(text), _n(value), '<dd class="share">%s</dd>' % share if share else '') for key, text, value, share in items)
    return '<dl class="%s" aria-label="%s">%s</dl>' % (css_class, _e(label), cells)


def _html_status_bar(figures):
    """One bar, split by status, as wide as the hosts: the share of each at a glance."""
    total = sum(figures[status] for status in STATUSES)
    if not total:
        return ''
    parts, x, described = [], 0.0, []
    for status in STATUSES:
        count = figures[status]
        described.append('%s %s' % (_n(count), STATUS_LABELS[status][:1].lower() + STATUS_LABELS[status][1:]))
        if count:
            width = 1000.0 * count / total
            parts.append('<rect class="st-%s" x="%.2f" y="0" width="%.2f" height="14"><title>%s: %s (%s)</title></rect>'
                         % (status, x, width, STATUS_LABELS[status], _n(count), _share(count, total)))
            x += width
    return ('<svg class="status-bar" id="status-bar" role="img" aria-label="Hosts by status: %s" viewBox="0 0 1000 14" '
            'preserveAspectRatio="none">%s</svg>' % (_e(', '.join(described)), ''.join(parts)))


def _html_chart(report):
    worst = worst_kbs(report)
    if not worst:
        return '<p class="empty">No KBs passed the filters: nothing to chart.</p>'
    label_w, bar_w, value_w, row_h, top = 150, 420, 400, 28, 8
    width, height = label_w + bar_w + value_w, top * 2 + row_h * len(worst)
    most = max(_count(kb.get('cve_addressed')) for dummy, kb in worst) or 1
    rows, descriptions = [], []
    for index, (name, kb) in enumerate(worst):
        cves, missed = _count(kb.get('cve_addressed')), _count(kb.get('machine_missed_on'))
        y, length = top + index * row_h, round(bar_w * cves / most)
        # Long (or hostile) names would run off the left edge; the row's <title> has the full name.
        short = name if len(name) <= 14 else name[:13] + '\u2026'
        need = sum(_kb_host_counts(kb)[outcome] for outcome in NONCOMPLIANT)
        value = '%s \u00b7 %s need%s it \u00b7 missing on %s' % (
            _plural(cves, 'CVE'), _plural(need, 'host'), 's' if need == 1 else '', _plural(missed, 'device'))
        descriptions.append('%s: %s' % (name, value))
        rows.append('<g class="row"><title>%s: %s</title>'
                    '<text x="%d" y="%d" text-anchor="end">%s</text>'
                    '<rect class="bar" x="%d" y="%d" width="%d" height="%d" rx="3"></rect>'
                    '<text class="value" x="%d" y="%d">%s</text></g>'
                    % (_e(name), _e(value), label_w - 10, y + 18, _e(short), label_w, y + 4, length, row_h - 8, label_w + length + 8, y + 18, _e(value)))
    return ('<svg class="chart" role="img" aria-labelledby="chart-title chart-desc" viewBox="0 0 %d %d" width="%d" height="%d">'
            '<title id="chart-title">Worst %d KBs by CVEs addressed</title><desc id="chart-desc">%s</desc>%s</svg>'
            % (width, height, width, height, len(worst), _e('; '.join(descriptions)), ''.join(rows)))


def _html_kb_link(name, kb):
    url = _safe_url(kb.get('url'))
    return '<a href="%s">%s</a>' % (_e(url), _e(name)) if url else _e(name)


def _html_kb_header(name, kb):
    cves = _count(kb.get('cve_addressed'))
    return '<th scope="col" title="%s">%s<small>%d CVE%s</small></th>' % (_e(kb.get('name')), _html_kb_link(name, kb), cves, '' if cves == 1 else 's')


def _html_cell(outcome, error):
    if outcome not in OUTCOME_LABELS:
        return '<td><span class="o o-none" title="not evaluated for this host">n/a</span></td>'
    title = ' title="%s"' % _e(error) if error else ''
    return '<td><span class="o o-%s"%s><span aria-hidden="true">%s</span> %s</span></td>' % (
        outcome, title, OUTCOME_SYMBOLS[outcome], OUTCOME_LABELS[outcome])


def _html_badge(outcome):
    return '<span class="o o-%s"><span aria-hidden="true">%s</span> %s</span>' % (outcome, OUTCOME_SYMBOLS[outcome], OUTCOME_LABELS[outcome])


def _html_table(report):
    # KB columns in the chart's order (most CVEs addressed first), so the KBs that matter are on screen
    hosts, kbs = _hosts(report), ranked_kbs(report)
    if not hosts:
        return '<p class="empty">No hosts: nothing to report.</p>'
    head = '<tr><th scope="col">Host</th><th scope="col">Status</th>%s</tr>' % ''.join(_html_kb_header(name, kb) for name, kb in kbs)
    rows, errors = [], []
    for name, host in hosts:
        host_kbs, host_errors = host.get('kbs') or {}, host.get('errors') or {}
        status = _text(host.get('status'))
        dns = host.get('computer_dns_name')
        row_head = '<th scope="row">%s%s</th>' % (_e(name), '<small>%s</small>' % _e(dns) if dns and dns != name else '')
        badge = '<td><span class="s s-%s">%s</span></td>' % (_e(status), _e(STATUS_LABELS.get(status, status or 'unknown')))
        cells = []
        for kb, dummy in kbs:
            outcome = host_kbs.get(kb)
            error = host_errors.get(kb) if outcome == 'failed' else None
            cells.append(_html_cell(outcome, error))
            if error:
                errors.append('<li><strong>%s</strong>, %s: <code>%s</code></li>' % (_e(name), _e(kb), _e(error)))
        rows.append('<tr>%s%s%s</tr>' % (row_head, badge, ''.join(cells)))
    table = ('<div class="scroll" role="region" aria-labelledby="matrix-caption" tabindex="0"><table id="matrix">'
             '<caption id="matrix-caption">Outcome of each KB on each host (n/a: the KB was not evaluated for that host)</caption>'
             '<thead>%s</thead><tbody>%s</tbody></table></div>' % (head, ''.join(rows)))
    if errors:
        table += '<h2>Install errors</h2><ul class="errors">%s</ul>' % ''.join(errors)
    return table


def _html_hosts(names, shown=HTML_HOSTS_SHOWN):
    """A compact list of host names: the first ``shown``, the rest in a collapsed "and N more"."""
    out = '<ul class="hosts">%s</ul>' % ''.join('<li>%s</li>' % _e(name) for name in names[:shown])
    if len(names) > shown:
        out += '<details class="more"><summary>and %s more</summary><ul class="hosts">%s</ul></details>' % (
            _n(len(names) - shown), ''.join('<li>%s</li>' % _e(name) for name in names[shown:]))
    return out


def _html_kb_table(report):
    """Every KB (up to HTML_KB_ROWS) in the one KB order, with how many hosts here still need it."""
    ranked = ranked_kbs(report)
    if not ranked:
        return '<p class="empty">No KBs passed the filters.</p>'
    columns = NONCOMPLIANT + ('installed',)
    head = ('<tr><th scope="col" class="num">#</th><th scope="col">KB</th><th scope="col" class="num">CVEs addressed</th>'
            + ''.join('<th scope="col" class="num">Hosts %s</th>' % OUTCOME_LABELS[outcome].lower() for outcome in columns)
            + '<th scope="col" class="num">Devices missing it</th><th scope="col">Name</th></tr>')
    rows = []
    for index, (name, kb) in enumerate(ranked[:HTML_KB_ROWS], 1):
        here = _kb_host_counts(kb)
        counts = ''.join('<td class="num">%s</td>' % _n(here[outcome]) for outcome in columns)
        rows.append('<tr><td class="num">%d</td><th scope="row">%s</th><td class="num">%s</td>%s<td class="num">%s</td>'
                    '<td class="name" title="%s">%s</td></tr>'
                    % (index, _html_kb_link(name, kb), _n(_count(kb.get('cve_addressed'))), counts,
                       _n(_count(kb.get('machine_missed_on'))), _e(kb.get('name')), _e(kb.get('name'))))
    more = len(ranked) - HTML_KB_ROWS
    return ('<details id="all-kbs"><summary>All %s, by CVEs addressed, with their outcomes on the hosts of this report</summary>'
            '<div class="scroll" role="region" aria-label="KBs" tabindex="0"><table id="kbs"><thead>%s</thead><tbody>%s</tbody></table></div>%s</details>'
            % (_plural(len(ranked), 'KB'), head, ''.join(rows),
               '<p class="lead">And %s more KBs, fewer CVEs addressed: see <code>%s</code>.</p>' % (_n(more), JSON_NAME) if more > 0 else ''))


def _html_need(need, limit=None):
    """A group's KBs per outcome, each outcome with its badge; ``limit`` shortens each list (for a summary line)."""
    if not need:
        return 'no KB listed (see <code>%s</code>)' % JSON_NAME
    parts = []
    for outcome, kbs in need:
        names = ', '.join(_e(kb) for kb in (kbs[:limit] if limit else kbs))
        if limit and len(kbs) > limit:
            names += ' and %s more' % _n(len(kbs) - limit)
        parts.append('%s %s' % (_html_badge(outcome), names))
    return ' '.join(parts)


def _html_groups(report):
    groups = host_groups(report)
    if not groups:
        return '<p class="empty" id="no-groups">No noncompliant hosts.</p>'
    hosts = sum(len(names) for dummy, names in groups)
    out = ['<p class="lead">%s in %s: the hosts of a group need exactly the same KBs (worst KB first). Largest groups first; '
           'the first is open.</p>' % (_plural(hosts, 'noncompliant host'), _plural(len(groups), 'group'))]
    shown = groups[:HTML_GROUPS]
    for index, (need, names) in enumerate(shown, 1):
        kbs = sum(len(kbs) for dummy, kbs in need)
        out.append('<details class="group" id="group-%d"%s><summary><span class="count">%s</span> \u00b7 %s</summary>'
                   '<p class="need">%s: %s</p>%s</details>'
                   % (index, ' open' if index == 1 else '', _plural(len(names), 'host'), _html_need(need, 4),
                      'Need %s' % _plural(kbs, 'KB'), _html_need(need), _html_hosts(names)))
    rest = groups[len(shown):]
    if rest:
        names = sorted(name for dummy, group in rest for name in group)
        out.append('<details class="group" id="group-rest"><summary><span class="count">and %s</span> in %s smaller groups</summary>'
                   '<p class="need">Their KBs are in <code>%s</code>.</p>%s</details>'
                   % (_plural(len(names), 'host'), _n(len(rest)), JSON_NAME, _html_hosts(names)))
    return ''.join(out)


def _html_errors(report):
    groups = error_groups(report)
    if not groups:
        return ''
    installs = sum(len(names) for dummy, names in groups)
    rows = ''.join('<tr><th scope="row">%s</th><td class="wrap"><code>%s</code></td><td class="num">%s</td><td class="wrap">%s</td></tr>' % (
        _e(kb), _e(error or 'no error text'), _n(len(names)), _first(names, 10, _e)) for (kb, error), names in groups[:HTML_ERROR_ROWS])
    out = ('<section aria-labelledby="errors-heading"><h2 id="errors-heading">Install errors</h2>'
           '<p class="lead">%s, by KB and error, most hosts first.</p>'
           '<div class="scroll" role="region" aria-labelledby="errors-heading" tabindex="0"><table id="errors">'
           '<thead><tr><th scope="col">KB</th><th scope="col">Error</th><th scope="col" class="num">Hosts</th><th scope="col">First hosts</th></tr></thead>'
           '<tbody>%s</tbody></table></div>' % (_plural(installs, 'failed install'), rows))
    if len(groups) > HTML_ERROR_ROWS:
        out += '<p class="lead">And %s other errors: see <code>%s</code>.</p>' % (_n(len(groups) - HTML_ERROR_ROWS), JSON_NAME)
    return out + '</section>'


def _html_fleet(report):
    """The grouped layout: noncompliant hosts by need, install errors, hosts not in Defender, compliant hosts (counted)."""
    absent, compliant = _by_status(report, 'not_in_defender'), _by_status(report, 'compliant')
    other = [name for name, host in _hosts(report) if host.get('status') not in STATUSES]
    parts = ['<section aria-labelledby="groups-heading"><h2 id="groups-heading">Noncompliant hosts, by the KBs they need</h2>',
             _html_groups(report), '</section>', _html_errors(report),
             '<section aria-labelledby="absent-heading"><h2 id="absent-heading">Hosts not in Defender</h2>']
    if absent:
        parts.append('<p class="lead">%s that no Defender device matched: not onboarded, or a <code>kb_patching_device_name</code> '
                     'that names no device.</p><div id="absent-hosts">%s</div>' % (_plural(len(absent), 'host'), _html_hosts(absent)))
    else:
        parts.append('<p class="empty">None.</p>')
    parts += ['</section>', '<section aria-labelledby="compliant-heading"><h2 id="compliant-heading">Compliant hosts</h2>']
    if compliant:
        parts.append('<details id="compliant-hosts"><summary><span class="count">%s</span></summary><ul class="hosts">%s</ul></details>'
                     % (_plural(len(compliant), 'compliant host'), ''.join('<li>%s</li>' % _e(name) for name in compliant)))
    else:
        parts.append('<p class="empty">None.</p>')
    if other:
        parts.append('<details id="other-hosts"><summary><span class="count">%s</span> with another status</summary>%s</details>'
                     % (_plural(len(other), 'host'), _html_hosts(other)))
    parts.append('</section>')
    return parts


def render_html(report):
    """One self-contained HTML5 page: inline CSS and SVG, no scripts, nothing fetched."""
    figures, outcomes = _summary(report)
    empty = not report.get('hosts') and not report.get('kbs')
    small = small_report(report)
    meta = ' \u00b7 '.join('<span id="meta-%s">%s %s</span>' % (
        key, label, ('<time>%s</time>' if key in ('data_time', 'generated') else '<strong>%s</strong>') % _e(value)) for key, label, value in _meta(report))
    parts = ['<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             '<title>%s \u2013 %s</title>' % (TITLE, _e(report.get('generated'))), '<style>%s</style>' % _CSS, '</head>', '<body>',
             '<header><h1>%s</h1><p class="meta">%s</p>' % (TITLE, meta),
             '<p class="meta">Filters: %s</p>' % _e(_filters_text(report, _text))]
    if report.get('strategy_note'):
        parts.append('<p class="note">%s</p>' % _e(report['strategy_note']))
    hosts = figures['hosts']
    status_items = [(key, label, figures[key], _share(figures[key], hosts) if key in STATUSES and hosts else None) for key, label in FIGURES]
    parts += ['</header>', '<main>', '<section aria-labelledby="summary-title"><h2 id="summary-title">Summary</h2>',
              _html_figures('figures', 'Hosts and KBs', status_items), _html_status_bar(figures),
              _html_figures('outcomes', 'Outcomes over hosts and KBs', [(key, OUTCOME_LABELS[key], outcomes[key], None) for key in OUTCOMES])]
    if empty:
        parts.append('<p class="empty" id="nothing">Nothing to report: the report has no hosts and no KBs.</p>')
    parts.append('</section>')
    if not empty:
        parts += ['<section aria-labelledby="chart-heading"><h2 id="chart-heading">Worst KBs by CVEs addressed</h2>', _html_chart(report),
                  '' if small else _html_kb_table(report), '</section>']
        if small:
            parts += ['<section aria-labelledby="matrix-heading"><h2 id="matrix-heading">Hosts and KBs</h2>', _html_table(report), '</section>']
        else:
            parts += _html_fleet(report)
    pointer = ('Every host\'s KBs, outcomes, install errors and Defender device are in <code>%s</code>, the report this page was made from.'
               % JSON_NAME)
    if not small:
        pointer = '%s \u00d7 %s: this page groups the hosts. %s' % (
            _plural(len(report.get('hosts') or {}), 'host'), _plural(len(report.get('kbs') or {}), 'KB'), pointer)
    parts.append('<p class="pointer" id="json-pointer">%s</p>' % pointer)
    parts += ['</main>', '<footer>defender.tvm kb_patching</footer>', '</body>', '</html>']
    return '\n'.join(parts) + '\n'


# -- the report files --------------------------------------------------------------------------

# format -> (file name, renderer); the JSON is the report dict itself, as to_nice_json writes it
REPORT_FILES = (
    ('json', JSON_NAME, lambda report: json.dumps(report, indent=2, sort_keys=True, separators=(',', ': '),
                                                  ensure_ascii=False)),
    ('junit', 'kb_patching.junit.xml', render_junit),
    ('markdown', 'kb_patching.md', render_markdown),
    ('html', 'kb_patching.html', render_html),
)


def write_reports(report, directory, formats):
    """Write ``formats`` of the report into ``directory`` (created 0755 when missing), each file
    replaced whole (a reader never sees half a report; mode 0644). Returns the paths written and
    whether any file changed."""
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    written, changed = [], False
    for name, file_name, render in REPORT_FILES:
        if name not in formats:
            continue
        path = os.path.join(directory, file_name)
        content = render(report).encode('utf-8')
        if os.path.exists(path):
            with open(path, 'rb') as handle:
                if handle.read() == content:
                    written.append(path)
                    continue
        handle, temporary = tempfile.mkstemp(prefix='.%s.' % file_name, dir=directory)
        try:
            with os.fdopen(handle, 'wb') as out:
                out.write(content)
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
        written.append(path)
        changed = True
    return written, changed
