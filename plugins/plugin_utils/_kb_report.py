# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Renderers for the kb_patching report dict (roles/kb_patching/CONTRACT.md): JUnit, Markdown, HTML.

Pure functions of the report, deterministic for the same input (hosts and KBs sorted). Host and KB
names come from inventories and the Defender API, so every renderer treats all data as untrusted.

FOR INTERNAL COLLECTION USE ONLY; the API may change in any release.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
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


# ---------------------------------------------------------------------------------------- JUnit

def _xml(value):
    return _XML_INVALID.sub('?', _text(value))


def _failure_lines(host):
    errors = host.get('errors') or {}
    lines = []
    for kb, outcome in sorted((_text(kb), _text(outcome)) for kb, outcome in (host.get('kbs') or {}).items()):
        if outcome in NONCOMPLIANT:
            error = errors.get(kb) if outcome == 'failed' else None
            lines.append('%s: %s%s' % (kb, outcome, ' (%s)' % _text(error) if error else ''))
    return lines


def render_junit(report):
    """JUnit XML: one test case per host; noncompliant fails, not in Defender is skipped."""
    strategy = _text(report.get('strategy'))
    hosts = _hosts(report)
    failures = sum(1 for dummy, host in hosts if host.get('status') == 'noncompliant')
    skipped = sum(1 for dummy, host in hosts if host.get('status') == 'not_in_defender')
    counts = {'tests': str(len(hosts)), 'failures': str(failures), 'errors': '0', 'skipped': str(skipped)}
    # Some CI systems only read <testsuites>, others only its single <testsuite>: give both the counts.
    root = ET.Element('testsuites', dict(name='kb_patching', **counts))
    suite = ET.SubElement(root, 'testsuite', dict(name='kb_patching', **counts))
    properties = ET.SubElement(suite, 'properties')
    for key in ('mode', 'strategy', 'generated'):
        ET.SubElement(properties, 'property', name=key, value=_xml(report.get(key)))
    for name, host in hosts:
        case = ET.SubElement(suite, 'testcase', classname=_xml('kb_patching.' + strategy), name=_xml(name))
        status = host.get('status')
        if status == 'not_in_defender':
            ET.SubElement(case, 'skipped', message='not in Defender: no Defender device matched this host')
        elif status == 'noncompliant':
            lines = _failure_lines(host)
            failure = ET.SubElement(case, 'failure', type='noncompliant', message=_xml('noncompliant: ' + ('; '.join(lines) or 'see the report')))
            failure.text = _xml('\n'.join(lines))
        kbs = host.get('kbs') or {}
        if kbs:
            ET.SubElement(case, 'system-out').text = _xml('\n'.join('%s: %s' % (kb, kbs[kb]) for kb in sorted(kbs)))
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


def render_markdown(report):
    """A summary to paste into a ticket (CommonMark with GitHub-style tables)."""
    figures, outcomes = _summary(report)
    hosts = _hosts(report)
    out = ['# ' + TITLE, '',
           '**Mode:** %s · **Strategy:** %s · **Generated:** %s' % (_md(report.get('mode')), _md(report.get('strategy')), _md(report.get('generated'))),
           '', '**Filters:** ' + _filters_text(report, _md), '']
    if report.get('strategy_note'):
        out += ['> ' + _md(report['strategy_note']), '']

    out += ['## Summary', '']
    rows = [[label, str(figures[key])] for key, label in FIGURES]
    rows += [['Outcome: ' + OUTCOME_LABELS[outcome], str(outcomes[outcome])] for outcome in OUTCOMES]
    out += _md_table(['Figure', 'Count'], rows, ['---', '--:']) + ['']

    out += ['## Noncompliant hosts', '']
    bad = [(name, host) for name, host in hosts if host.get('status') == 'noncompliant']
    if bad:
        rows = []
        for name, host in bad:
            errors = host.get('errors') or {}
            row = [_md(name)]
            for outcome in OUTCOMES:
                kbs = _host_kbs(host, (outcome,))
                if outcome == 'failed':
                    row.append(', '.join(_md(kb) + (' (%s)' % _md(errors[kb]) if errors.get(kb) else '') for kb in kbs))
                else:
                    row.append(', '.join(_md(kb) for kb in kbs))
            rows.append(row)
        out += _md_table(['Host'] + [OUTCOME_LABELS[outcome] for outcome in OUTCOMES], rows) + ['']
    else:
        out += ['None.', '']

    out += ['## Worst KBs', '']
    worst = worst_kbs(report)
    if worst:
        rows = [[_md_link(name, kb.get('url')), _md(kb.get('name')), str(_count(kb.get('cve_addressed'))), str(_count(kb.get('machine_missed_on'))),
                 str(_count((kb.get('hosts') or {}).get('missing')))] for name, kb in worst]
        out += _md_table(['KB', 'Name', 'CVEs addressed', 'Devices missing it', 'Hosts missing it here'], rows,
                         ['---', '---', '--:', '--:', '--:']) + ['']
    else:
        out += ['None.', '']

    out += ['## Hosts not in Defender', '']
    absent = [name for name, host in hosts if host.get('status') == 'not_in_defender']
    out += ['- ' + _md(name) for name in absent] or ['None.']
    return '\n'.join(out) + '\n'


# ----------------------------------------------------------------------------------------- HTML

_CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #ffffff; --panel: #f6f8fa; --bar: #b3401a; }
* { box-sizing: border-box; }
body { margin: 0; padding: 2rem; color: var(--fg); background: var(--bg);
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", "DejaVu Sans", Arial, sans-serif; }
main, header { max-width: 72rem; margin: 0 auto; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 2rem 0 .75rem; padding-bottom: .25rem; border-bottom: 1px solid var(--line); }
.meta, .note, .empty, caption { color: var(--muted); }
.meta { margin: 0; }
.note { margin: .5rem 0 0; font-style: italic; }
.figures, .outcomes { display: flex; flex-wrap: wrap; gap: .75rem; margin: 0; padding: 0; }
.figure { min-width: 8.5rem; padding: .6rem .9rem; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; }
.figure dt { font-size: .8rem; color: var(--muted); text-transform: uppercase; letter-spacing: .03em; }
.figure dd { margin: 0; font-size: 1.7rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.outcomes { margin-top: .75rem; }
.outcomes .figure { min-width: 7rem; padding: .35rem .7rem; }
.outcomes .figure dd { font-size: 1.2rem; }
.chart { width: 100%; max-width: 56rem; height: auto; }
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
.errors code { white-space: pre-wrap; }
footer { max-width: 72rem; margin: 2rem auto 0; color: var(--muted); font-size: .8rem; }
@media print { body { padding: 0; } .scroll { overflow: visible; border: 0; } }
"""


def _e(value):
    return escape(_text(value), quote=True)


def _html_figures(css_class, label, items):
    cells = ''.join('<div class="figure" id="figure-%s"><dt>%s</dt><dd>%d</dd></div>' % (_e(key), _e(text), value) for key, text, value in items)
    return '<dl class="%s" aria-label="%s">%s</dl>' % (css_class, _e(label), cells)


def _html_chart(report):
    worst = worst_kbs(report)
    if not worst:
        return '<p class="empty">No KBs passed the filters: nothing to chart.</p>'
    label_w, bar_w, value_w, row_h, top = 150, 420, 230, 28, 8
    width, height = label_w + bar_w + value_w, top * 2 + row_h * len(worst)
    most = max(_count(kb.get('cve_addressed')) for dummy, kb in worst) or 1
    rows, descriptions = [], []
    for index, (name, kb) in enumerate(worst):
        cves, missed = _count(kb.get('cve_addressed')), _count(kb.get('machine_missed_on'))
        y, length = top + index * row_h, round(bar_w * cves / most)
        # Long (or hostile) names would run off the left edge; the row's <title> has the full name.
        short = name if len(name) <= 14 else name[:13] + '\u2026'
        value = '%d CVE%s \u00b7 missing on %d device%s' % (cves, '' if cves == 1 else 's', missed, '' if missed == 1 else 's')
        descriptions.append('%s: %s' % (name, value))
        rows.append('<g class="row"><title>%s: %s</title>'
                    '<text x="%d" y="%d" text-anchor="end">%s</text>'
                    '<rect class="bar" x="%d" y="%d" width="%d" height="%d" rx="3"></rect>'
                    '<text class="value" x="%d" y="%d">%s</text></g>'
                    % (_e(name), _e(value), label_w - 10, y + 18, _e(short), label_w, y + 4, length, row_h - 8, label_w + length + 8, y + 18, _e(value)))
    return ('<svg class="chart" role="img" aria-labelledby="chart-title chart-desc" viewBox="0 0 %d %d" width="%d" height="%d">'
            '<title id="chart-title">Worst %d KBs by CVEs addressed</title><desc id="chart-desc">%s</desc>%s</svg>'
            % (width, height, width, height, len(worst), _e('; '.join(descriptions)), ''.join(rows)))


def _html_kb_header(name, kb):
    url = _safe_url(kb.get('url'))
    link = '<a href="%s">%s</a>' % (_e(url), _e(name)) if url else _e(name)
    cves = _count(kb.get('cve_addressed'))
    return '<th scope="col" title="%s">%s<small>%d CVE%s</small></th>' % (_e(kb.get('name')), link, cves, '' if cves == 1 else 's')


def _html_cell(outcome, error):
    if outcome not in OUTCOME_LABELS:
        return '<td><span class="o o-none" title="not evaluated for this host">n/a</span></td>'
    title = ' title="%s"' % _e(error) if error else ''
    return '<td><span class="o o-%s"%s><span aria-hidden="true">%s</span> %s</span></td>' % (
        outcome, title, OUTCOME_SYMBOLS[outcome], OUTCOME_LABELS[outcome])


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


def render_html(report):
    """One self-contained HTML5 page: inline CSS and SVG, no scripts, nothing fetched."""
    figures, outcomes = _summary(report)
    empty = not report.get('hosts') and not report.get('kbs')
    meta = 'Mode <strong>%s</strong> \u00b7 Strategy <strong>%s</strong> \u00b7 Generated <time>%s</time>' % (
        _e(report.get('mode')), _e(report.get('strategy')), _e(report.get('generated')))
    parts = ['<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             '<title>%s \u2013 %s</title>' % (TITLE, _e(report.get('generated'))), '<style>%s</style>' % _CSS, '</head>', '<body>',
             '<header><h1>%s</h1><p class="meta">%s</p>' % (TITLE, meta),
             '<p class="meta">Filters: %s</p>' % _e(_filters_text(report, _text))]
    if report.get('strategy_note'):
        parts.append('<p class="note">%s</p>' % _e(report['strategy_note']))
    parts += ['</header>', '<main>', '<section aria-labelledby="summary-title"><h2 id="summary-title">Summary</h2>',
              _html_figures('figures', 'Hosts and KBs', [(key, label, figures[key]) for key, label in FIGURES]),
              _html_figures('outcomes', 'Outcomes over hosts and KBs', [(key, OUTCOME_LABELS[key], outcomes[key]) for key in OUTCOMES])]
    if empty:
        parts.append('<p class="empty" id="nothing">Nothing to report: the report has no hosts and no KBs.</p>')
    parts.append('</section>')
    if not empty:
        parts += ['<section aria-labelledby="chart-heading"><h2 id="chart-heading">Worst KBs by CVEs addressed</h2>', _html_chart(report), '</section>',
                  '<section aria-labelledby="matrix-heading"><h2 id="matrix-heading">Hosts and KBs</h2>', _html_table(report), '</section>']
    parts += ['</main>', '<footer>defender.tvm kb_patching</footer>', '</body>', '</html>']
    return '\n'.join(parts) + '\n'
