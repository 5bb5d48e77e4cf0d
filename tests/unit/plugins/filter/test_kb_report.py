# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The kb_patching report renderers: JUnit, Markdown and HTML, and the filters that expose them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
from html import escape
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.defender.tvm.plugins.filter.kb_patching import FilterModule
from ansible_collections.defender.tvm.plugins.plugin_utils import _kb_report as kb_report
from ansible_collections.defender.tvm.plugins.plugin_utils._kb_patching import NONCOMPLIANT
from ansible_collections.defender.tvm.plugins.plugin_utils._kb_report import (
    error_groups, host_groups, ranked_kbs, render_html, render_junit, render_markdown, small_report, worst_kbs)

from ansible_collections.defender.tvm.tests.unit.plugins.filter.report_samples import (
    CATALOG, FLEET_ERRORS, HOSTILE_HOST, HOSTILE_KB, empty_report, fleet_report, reversed_report, sample_report)

MB = 1024 * 1024


class Page(HTMLParser):
    """Every start tag with its attributes, the text, and the raw <style> content."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.text, self.style, self._in_style = [], [], [], False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == 'style'

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        (self.style if self._in_style else self.text).append(data)


def parse_html(text):
    page = Page()
    page.feed(text)
    page.close()
    return page


# ---------------------------------------------------------------------------------------- JUnit

def test_junit_counts_failures_and_skips():
    root = ET.fromstring(render_junit(sample_report()).encode('utf-8'))
    suites = root.findall('testsuite')
    assert len(suites) == 1
    suite = suites[0]
    assert suite.get('name') == 'kb_patching'
    for element in (root, suite):
        assert (element.get('tests'), element.get('failures'), element.get('skipped'), element.get('errors')) == ('4', '2', '1', '0')
    cases = dict((case.get('name'), case) for case in suite.findall('testcase'))
    assert sorted(cases) == sorted(['web01', HOSTILE_HOST, 'app02', 'ghost03'])
    assert set(case.get('classname') for case in cases.values()) == {'kb_patching.software'}
    assert cases['web01'].find('failure') is None and cases['web01'].find('skipped') is None
    assert cases['ghost03'].find('skipped').get('message').startswith('not in Defender')
    assert cases['ghost03'].find('failure') is None
    assert 'KB5034122: missing' in cases['app02'].find('failure').get('message')


def test_junit_failure_lists_bad_kbs_with_errors():
    suite = ET.fromstring(render_junit(sample_report()).encode('utf-8')).find('testsuite')
    failure = [case for case in suite.findall('testcase') if case.get('name') == HOSTILE_HOST][0].find('failure')
    message = failure.get('message')
    for expected in ('KB5034122: missing', 'KB5034441: failed (0x80240022: Installation failed | <retry> & "reboot")',
                     'KB5035849: pending_reboot', HOSTILE_KB + ': missing'):
        assert expected in message and expected in failure.text
    assert 'installed' not in message and 'not_offered' not in message


def test_junit_properties_and_order():
    text = render_junit(sample_report())
    suite = ET.fromstring(text.encode('utf-8')).find('testsuite')
    properties = dict((prop.get('name'), prop.get('value')) for prop in suite.find('properties'))
    assert properties == {'mode': 'install', 'strategy': 'software', 'generated': '2026-11-27T15:00:00Z'}
    assert [case.get('name') for case in suite.findall('testcase')] == sorted(['web01', HOSTILE_HOST, 'app02', 'ghost03'])
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert render_junit(reversed_report()) == text


def test_junit_survives_control_characters():
    report = sample_report()
    report['hosts']['bell\x07host'] = dict(report['hosts']['app02'])
    root = ET.fromstring(render_junit(report).encode('utf-8'))
    assert 'bell?host' in [case.get('name') for case in root.iter('testcase')]


def test_junit_empty_report():
    root = ET.fromstring(render_junit(empty_report()).encode('utf-8'))
    assert root.find('testsuite').get('tests') == '0'
    assert not root.find('testsuite').findall('testcase')


# ------------------------------------------------------------------------------------- Markdown

def table_after(markdown, heading):
    """The rows of the first table after a heading, split into cells on unescaped pipes."""
    lines = markdown.split(heading + '\n', 1)[1].lstrip('\n').split('\n')
    rows = []
    for line in lines:
        if not line.startswith('|'):
            break
        cells = [cell.strip() for cell in line.replace('\\|', '\0').strip('|').split('|')]
        rows.append([cell.replace('\0', '\\|') for cell in cells])
    return rows


def test_markdown_summary_table():
    markdown = render_markdown(sample_report())
    assert markdown.startswith('# KB patching report\n')
    assert '**Mode:** install' in markdown and '**Strategy:** software' in markdown and '2026-11-27T15:00:00Z' in markdown
    assert '> Defender lists these KBs as missing' in markdown
    rows = dict(table_after(markdown, '## Summary')[2:])
    assert rows == {'Hosts': '4', 'Compliant': '1', 'Noncompliant': '2', 'Not in Defender': '1', 'KBs': '4',
                    'Outcome: Missing': '3', 'Outcome: Installed': '2', 'Outcome: Failed': '1', 'Outcome: Pending reboot': '1',
                    'Outcome: Not offered': '2'}


def test_markdown_noncompliant_hosts_escapes_pipes():
    markdown = render_markdown(sample_report())
    rows = table_after(markdown, '## Noncompliant hosts')
    assert rows[0] == ['Host', 'Missing', 'Installed', 'Failed', 'Pending reboot', 'Not offered']
    assert all(len(row) == 6 for row in rows), rows
    by_host = dict((row[0], row) for row in rows[2:])
    assert sorted(by_host) == ['app02', r'db\<01\>\&"prod"\|eu']
    hostile = by_host[r'db\<01\>\&"prod"\|eu']
    assert hostile[1] == r'KB5034122, KB5099999\<img src=x onerror=alert(1)\>\&"q"\|r'
    assert hostile[3] == r'KB5034441 (0x80240022: Installation failed \| \<retry\> \& "reboot")'
    assert hostile[4] == 'KB5035849'
    assert by_host['app02'][1:3] == ['KB5034122', 'KB5035849']


def test_markdown_worst_kbs_and_absent_hosts():
    markdown = render_markdown(sample_report())
    rows = table_after(markdown, '## Worst KBs')
    assert [row[2] for row in rows[2:]] == ['25', '12', '3', '1']
    assert rows[2][0] == '[KB5035849](%sKB5035849)' % CATALOG
    assert rows[2][3] == '12'
    # The hostile KB: escaped, and its javascript: URL is not linked.
    assert rows[5][0] == r'KB5099999\<img src=x onerror=alert(1)\>\&"q"\|r' and 'javascript' not in markdown
    assert markdown.rstrip().endswith('## Hosts not in Defender\n\n- ghost03')


@pytest.mark.parametrize('value,expected', [
    ('2024-01 Cumulative Update for .NET Framework (KB5033909)', '2024-01 Cumulative Update for .NET Framework (KB5033909)'),
    ('[link](javascript:x)', r'\[link\](javascript:x)'),
    ('# heading', r'\# heading'), ('- item', r'\- item'), ('1. item', r'1\. item'), ('> quote', r'\> quote'),
    ('a*b_c`d', r'a\*b\_c\`d'), ('pipe|cell', r'pipe\|cell'), ('web-01 (prod) #2!', 'web-01 (prod) #2!'),
])
def test_markdown_escapes_only_what_would_become_markup(value, expected):
    assert kb_report._md(value) == expected


def test_markdown_is_deterministic_and_handles_empty():
    assert render_markdown(reversed_report()) == render_markdown(sample_report())
    markdown = render_markdown(empty_report())
    assert markdown.count('None.') == 3


# ----------------------------------------------------------------------------------------- HTML

def test_html_is_self_contained():
    text = render_html(sample_report())
    page = parse_html(text)
    tags = [tag for tag, dummy in page.tags]
    assert text.startswith('<!DOCTYPE html>')
    assert 'script' not in tags and 'link' not in tags and 'img' not in tags and 'iframe' not in tags and 'object' not in tags
    for tag, attrs in page.tags:
        assert 'src' not in attrs and 'srcset' not in attrs, (tag, attrs)
        assert not any(name.startswith('on') for name in attrs), (tag, attrs)
        if 'href' in attrs:
            assert tag == 'a' and attrs['href'].startswith(CATALOG), (tag, attrs)
    links = sorted(attrs['href'] for tag, attrs in page.tags if tag == 'a')
    assert links == [CATALOG + kb for kb in ('KB5034122', 'KB5034441', 'KB5035849')]
    style = ''.join(page.style)
    assert '@import' not in style and 'url(' not in style and '@font-face' not in style


def test_html_escapes_untrusted_data():
    text = render_html(sample_report())
    for raw in ('<01>', '<img', '<b>update', '<retry>', 'javascript:'):
        assert raw not in text
    assert 'db&lt;01&gt;&amp;&quot;prod&quot;|eu' in text
    assert 'KB5099999&lt;img src=x onerror=alert(1)&gt;&amp;&quot;q&quot;|r' in text
    page_text = ''.join(parse_html(text).text)
    assert HOSTILE_HOST in page_text and HOSTILE_KB in page_text


def test_html_structure_and_figures():
    text = render_html(sample_report())
    page = parse_html(text)
    tags = [tag for tag, dummy in page.tags]
    assert tags.count('h1') == 1 and 'title' in tags and 'svg' in tags
    svg = [attrs for tag, attrs in page.tags if tag == 'svg' and attrs.get('class') == 'chart'][0]
    assert svg['role'] == 'img' and svg['aria-labelledby'] == 'chart-title chart-desc'
    status_bar = [attrs for tag, attrs in page.tags if tag == 'svg' and attrs.get('class') == 'status-bar'][0]
    assert status_bar['aria-label'] == 'Hosts by status: 1 compliant, 2 noncompliant, 1 not in Defender'
    assert tags.count('rect') == 4 + 3  # the chart's bars and the status bar's parts
    assert all(attrs.get('scope') in ('col', 'row') for tag, attrs in page.tags if tag == 'th')
    for figure, value in (('hosts', 4), ('compliant', 1), ('noncompliant', 2), ('not_in_defender', 1), ('kbs', 4),
                          ('missing', 3), ('installed', 2), ('failed', 1), ('pending_reboot', 1), ('not_offered', 2)):
        assert '<div class="figure" id="figure-%s"><dt>' % figure in text
        assert text.split('id="figure-%s"' % figure, 1)[1].split('</dd>', 1)[0].endswith('<dd>%d' % value)
    for figure, share in (('compliant', '25.0%'), ('noncompliant', '50.0%'), ('not_in_defender', '25.0%')):
        assert text.split('id="figure-%s"' % figure, 1)[1].split('</div>', 1)[0].endswith('<dd class="share">%s</dd>' % share)
    # Every outcome and status has its text label, not only its colour.
    for label in ('Missing', 'Installed', 'Failed', 'Pending reboot', 'Not offered', 'Compliant', 'Noncompliant', 'Not in Defender'):
        assert '> %s</span>' % label in text or '>%s</span>' % label in text
    assert text.count('<tr>') == 5


def test_html_chart_orders_by_cves():
    text = render_html(sample_report())
    chart = text.split('<svg class="chart"', 1)[1].split('</svg>', 1)[0]
    positions = [chart.index('>%s</text>' % kb) for kb in ('KB5035849', 'KB5034122', 'KB5034441')]
    assert positions == sorted(positions)
    # CVEs, the hosts of this report that still need it (missing, failed or pending reboot), Defender's devices missing it
    assert '25 CVEs \u00b7 1 host needs it \u00b7 missing on 12 devices' in chart
    assert '12 CVEs \u00b7 2 hosts need it \u00b7 missing on 40 devices' in chart


def test_html_table_columns_follow_the_chart_order():
    report = sample_report()
    text = render_html(report)
    table = text.split('<table', 1)[1].split('</table>', 1)[0]
    header = table.split('</tr>', 1)[0]
    ranked = [name for name, dummy in kb_report.ranked_kbs(report)]
    positions = [header.index('>%s<' % escape(kb)) for kb in ranked]
    assert positions == sorted(positions) and ranked != sorted(ranked)  # by CVEs, which is not by number


def test_html_empty_report():
    page = parse_html(render_html(empty_report()))
    text = ''.join(page.text)
    assert 'Nothing to report' in text
    assert 'svg' not in [tag for tag, dummy in page.tags] and 'table' not in [tag for tag, dummy in page.tags]


def test_html_hosts_without_kbs():
    report = empty_report()
    report['hosts'] = {'ghost03': sample_report()['hosts']['ghost03']}
    text = render_html(report)
    assert 'nothing to chart' in text and text.count('<tr>') == 2


def test_html_is_deterministic():
    assert render_html(reversed_report()) == render_html(sample_report())


# ------------------------------------------------------------------------------------ worst KBs

def test_worst_kbs_top_ten_by_cves_then_devices():
    report = sample_report()
    report['kbs'] = dict(('KB%07d' % index, {'cve_addressed': index % 4, 'machine_missed_on': index}) for index in range(15))
    report['kbs']['KB9999999'] = {'cve_addressed': None, 'machine_missed_on': None}
    ranked = [name for name, dummy in worst_kbs(report)]
    assert len(ranked) == 10
    assert ranked[:4] == ['KB0000011', 'KB0000007', 'KB0000003', 'KB0000014']
    assert 'KB9999999' not in ranked


# ------------------------------------------------------------------------- source and data time

def test_source_and_data_time_are_shown_next_to_mode_and_strategy():
    report = sample_report()
    report.update(source='export (json)', data_time='2026-11-27T06:12:00Z', data_time_basis='asked')
    html = render_html(report)
    meta = html.split('<p class="meta">', 1)[1].split('</p>', 1)[0]
    assert meta.index('Mode') < meta.index('Strategy') < meta.index('Source <strong>export (json)</strong>') \
        < meta.index('Defender asked at <time>2026-11-27T06:12:00Z</time>') < meta.index('Generated')
    markdown = render_markdown(report)
    assert ('**Mode:** install · **Strategy:** software · **Source:** export (json) · **Defender asked at:** 2026-11-27T06:12:00Z'
            ' · **Generated:** 2026-11-27T15:00:00Z') in markdown
    # the files route's export says when it was made: the report says the data is from then
    assert '**Defender data generated:** 2026-11-27T06:12:00Z' in render_markdown(dict(report, data_time_basis='generated'))
    properties = ET.fromstring(render_junit(report).encode('utf-8')).find('testsuite/properties')
    assert [(prop.get('name'), prop.get('value')) for prop in properties] == [
        ('mode', 'install'), ('strategy', 'software'), ('source', 'export (json)'), ('data_time', '2026-11-27T06:12:00Z'),
        ('generated', '2026-11-27T15:00:00Z')]
    # A report without them (an older one, or a hand-made one) shows neither.
    for text in (render_html(sample_report()), render_markdown(sample_report()), render_junit(sample_report())):
        assert 'Source' not in text and 'Defender asked' not in text and 'data_time' not in text


def test_source_and_data_time_are_escaped():
    report = sample_report()
    report.update(source='<b>export</b> | *json*', data_time='<script>1</script>')
    html = render_html(report)
    assert '<b>export' not in html and '<script>' not in html and '&lt;b&gt;export&lt;/b&gt;' in html
    assert r'**Source:** \<b\>export\</b\> \| \*json\*' in render_markdown(report)
    ET.fromstring(render_junit(report).encode('utf-8'))


# ------------------------------------------------------------------------------------- layouts

def hosts_kbs_report(hosts, kbs):
    """``hosts`` noncompliant hosts, each missing the same ``kbs`` KBs."""
    report = empty_report()
    names = ['KB%d' % (5030000 + index) for index in range(kbs)]
    report['kbs'] = dict((name, {'cve_addressed': 1, 'machine_missed_on': 1, 'hosts': {'missing': hosts}}) for name in names)
    report['hosts'] = dict(('h%03d' % index, {'status': 'noncompliant', 'kbs': dict.fromkeys(names, 'missing')}) for index in range(hosts))
    return report


@pytest.mark.parametrize('hosts,kbs,small', [
    (0, 0, True), (4, 4, True), (100, 25, True), (50, 50, True), (100, 0, True),
    (101, 1, False), (100, 26, False), (51, 50, False), (6, 500, False),
])
def test_small_reports_keep_the_matrix(hosts, kbs, small):
    report = hosts_kbs_report(hosts, kbs)
    assert small_report(report) is small
    assert kb_report.MATRIX_HOSTS == 100 and kb_report.MATRIX_CELLS == 2500  # the documented numbers
    html, markdown = render_html(report), render_markdown(report)
    assert len(markdown.splitlines()) < 200  # also for the largest small report, a row per host
    if not hosts:
        return
    assert ('id="matrix"' in html) is small and ('id="group-1"' in html) is not small
    # Markdown: a row per noncompliant host while small, else a row per group.
    assert ('\n| h000 |' in markdown) is small
    assert ('| %d | KB5030000' % hosts in markdown) is not small


def test_small_report_layout_is_the_matrix_and_the_per_host_rows():
    report = sample_report()
    html = render_html(report)
    assert 'id="matrix"' in html and 'id="group-1"' not in html and 'id="all-kbs"' not in html and 'id="compliant-hosts"' not in html
    assert 'kb_patching.json' in html.split('id="json-pointer"', 1)[1].split('</p>', 1)[0]
    markdown = render_markdown(report)
    assert '\nFull per-host detail (every host\'s KBs, outcomes, errors and device): `kb_patching.json`.\n' in markdown
    assert '## Compliant hosts' not in markdown and '## Install errors' not in markdown


@pytest.fixture(scope='module')
def fleet():
    """10,000 hosts x 50 KBs, as the role reports them, and its three renderings."""
    report = fleet_report()
    assert (report['summary']['hosts'], report['summary']['kbs']) == (10000, 50)
    return {'report': report, 'html': render_html(report), 'markdown': render_markdown(report), 'junit': render_junit(report)}


def test_fleet_html_is_small_and_leads_with_what_to_act_on(fleet):
    report, html = fleet['report'], fleet['html']
    summary = report['summary']
    size = len(html.encode('utf-8'))
    print('kb_patching.html at 10,000 hosts x 50 KBs: %d bytes' % size)
    assert size < 5 * MB
    assert not small_report(report) and 'id="matrix"' not in html
    for figure in ('hosts', 'compliant', 'noncompliant', 'not_in_defender', 'kbs'):
        assert 'id="figure-%s"><dt>' % figure in html
        assert html.split('id="figure-%s"' % figure, 1)[1].split('</dd>', 1)[0].endswith('<dd>{:,}'.format(summary[figure]))
    # The order a person reads: summary, the worst KBs, the noncompliant hosts by group, install errors, hosts not in
    # Defender, the compliant hosts (collapsed), the pointer to the JSON.
    order = [html.index(marker) for marker in ('id="summary-title"', '<svg class="chart"', 'id="all-kbs"', 'id="groups-heading"', 'id="group-1"',
                                               'id="errors-heading"', 'id="absent-heading"', 'id="compliant-hosts"', 'id="json-pointer"')]
    assert order == sorted(order)
    assert html.count('<rect class="bar"') == kb_report.WORST_LIMIT
    assert '<details id="all-kbs">' in html and '<details id="compliant-hosts">' in html  # collapsed
    assert '<details class="group" id="group-1" open>' in html and '<details class="group" id="group-2">' in html
    pointer = html.split('id="json-pointer">', 1)[1].split('</p>', 1)[0]
    assert pointer.startswith('10,000 hosts \u00d7 50 KBs') and '<code>kb_patching.json</code>' in pointer


def test_fleet_html_kb_table_follows_the_kb_order(fleet):
    report, html = fleet['report'], fleet['html']
    table = html.split('<table id="kbs">', 1)[1].split('</table>', 1)[0]
    rows = table.split('<tbody>', 1)[1].split('</tr>')[:-1]
    ranked = ranked_kbs(report)
    assert len(rows) == len(ranked) == 50
    for row, (name, kb) in zip(rows, ranked):
        cells = [cell.split('>', 1)[1].split('<', 1)[0] for cell in row.split('<td')[1:]]
        assert '>%s</a>' % name in row
        # CVEs, hosts missing, failed, pending reboot, installed, devices missing it
        assert cells[1:7] == ['{:,}'.format(value) for value in (
            kb['cve_addressed'], kb['hosts']['missing'], kb['hosts']['failed'], kb['hosts']['pending_reboot'], kb['hosts']['installed'],
            kb['machine_missed_on'])], name


def test_fleet_html_lists_each_group_and_every_host_once(fleet):
    report, html = fleet['report'], fleet['html']
    groups = host_groups(report)
    shown = groups[:kb_report.HTML_GROUPS]
    assert len(groups) > kb_report.HTML_GROUPS  # the fleet has a long tail of small groups
    for index, (need, names) in enumerate(shown, 1):
        group = html.split('id="group-%d"' % index, 1)[1].split('</details></details>' if len(names) > kb_report.HTML_HOSTS_SHOWN else '</details>', 1)[0]
        assert '<span class="count">%s host%s</span>' % ('{:,}'.format(len(names)), '' if len(names) == 1 else 's') in group
        listed = [item.split('</li>', 1)[0] for item in group.split('<li>')[1:]]
        assert listed == [escape(name) for name in names]
        for outcome, kbs in need:
            assert ', '.join(kbs) in group
    rest = sum(len(names) for dummy, names in groups[len(shown):])
    tail = html.split('id="group-rest"', 1)[1].split('</summary>', 1)[0]
    assert '>and {:,} hosts</span> in {:,} smaller groups'.format(rest, len(groups) - len(shown)) in tail
    # every host name, exactly once: the groups (and their tail), not in Defender, compliant
    hosts = html.split('id="groups-heading"', 1)[1].split('id="json-pointer"', 1)[0].split('id="errors-heading"')
    errors_and_after = hosts[1].split('id="absent-heading"', 1)[1]
    listed = [item.split('</li>', 1)[0] for part in (hosts[0], errors_and_after) for item in part.split('<li>')[1:]]
    assert sorted(listed) == sorted(escape(name) for name in report['hosts'])
    assert escape(HOSTILE_HOST) in listed and HOSTILE_HOST not in html


def test_fleet_html_is_self_contained_and_escaped(fleet):
    html = fleet['html']
    page = parse_html(html)
    for tag, attrs in page.tags:
        assert tag not in ('script', 'link', 'img', 'iframe', 'object'), tag
        assert 'src' not in attrs and not any(name.startswith('on') for name in attrs), (tag, attrs)
        if 'href' in attrs:
            assert tag == 'a' and attrs['href'].startswith(CATALOG), (tag, attrs)


def test_fleet_install_errors_grouped_by_kb_and_error(fleet):
    report, html = fleet['report'], fleet['html']
    groups = error_groups(report)
    assert sum(len(names) for dummy, names in groups) == report['summary']['outcomes']['failed'] > 0
    assert set(error for (dummy, error), dummy in groups) == set(FLEET_ERRORS)
    sizes = [len(names) for dummy, names in groups]
    assert sizes == sorted(sizes, reverse=True)
    for (kb, error), names in groups:
        for name in names:
            host = report['hosts'][name]
            assert host['kbs'][kb] == 'failed' and host['errors'][kb] == error
    table = html.split('<table id="errors">', 1)[1].split('</table>', 1)[0]
    assert table.count('<tr>') == 1 + kb_report.HTML_ERROR_ROWS
    assert 'And %d other errors' % (len(groups) - kb_report.HTML_ERROR_ROWS) in html


def test_fleet_markdown_is_short_and_points_to_the_json(fleet):
    report, markdown = fleet['report'], fleet['markdown']
    lines = markdown.splitlines()
    print('kb_patching.md at 10,000 hosts x 50 KBs: %d lines' % len(lines))
    assert len(lines) < 200
    assert 'Full per-host detail (every host\'s KBs, outcomes, errors and device): `kb_patching.json`.' in lines
    headings = [line for line in lines if line.startswith('## ')]
    assert headings == ['## Summary', '## Worst KBs', '## Noncompliant hosts', '## Install errors', '## Hosts not in Defender', '## Compliant hosts']
    rows = dict(table_after(markdown, '## Summary')[2:])
    assert rows['Hosts'] == '10,000' and rows['Noncompliant'] == '{:,}'.format(report['summary']['noncompliant'])
    worst = table_after(markdown, '## Worst KBs')[2:]
    assert [row[0].split(']', 1)[0][1:] for row in worst] == [name for name, dummy in ranked_kbs(report)[:kb_report.MARKDOWN_KB_ROWS]]
    assert 'And 25 more KBs, fewer CVEs addressed: see `kb_patching.json`.' in lines


def test_fleet_markdown_groups_add_up(fleet):
    report, markdown = fleet['report'], fleet['markdown']
    groups = host_groups(report)
    lead = '{:,} hosts in {:,} groups; the hosts of a group need exactly the same KBs. Largest groups first:'.format(
        report['summary']['noncompliant'], len(groups))
    assert '\n## Noncompliant hosts\n\n%s\n\n|' % lead in markdown
    rows = table_after(markdown, lead)
    assert rows[0] == ['Hosts', 'Missing', 'Failed', 'Pending reboot', 'First hosts']
    assert len(rows) == 2 + kb_report.MARKDOWN_GROUPS
    for row, (need, names) in zip(rows[2:], groups):
        assert row[0] == '{:,}'.format(len(names))
        assert row[1:4] == [', '.join(dict(need).get(outcome, ())) for outcome in NONCOMPLIANT]
        shown, more = names[:kb_report.MARKDOWN_HOSTS_SHOWN], len(names) - kb_report.MARKDOWN_HOSTS_SHOWN
        assert row[4] == ', '.join(shown) + (' and {:,} more'.format(more) if more > 0 else '')
    shown = sum(len(names) for dummy, names in groups[:kb_report.MARKDOWN_GROUPS])
    tail = 'And {:,} hosts in {:,} smaller groups: see `kb_patching.json`.'.format(
        report['summary']['noncompliant'] - shown, len(groups) - kb_report.MARKDOWN_GROUPS)
    assert tail in markdown
    absent = sorted(name for name, host in report['hosts'].items() if host['status'] == 'not_in_defender')
    assert '\n{:,} hosts: {} and {:,} more.\n'.format(len(absent), ', '.join(absent[:10]), len(absent) - 10) in markdown
    assert markdown.endswith('\n{:,} hosts, listed in `kb_patching.json`.\n'.format(report['summary']['compliant']))


def test_fleet_junit_one_lean_case_per_host(fleet):
    report, junit = fleet['report'], fleet['junit']
    summary = report['summary']
    root = ET.fromstring(junit.encode('utf-8'))
    suite = root.find('testsuite')
    cases = suite.findall('testcase')
    print('kb_patching.junit.xml at 10,000 hosts x 50 KBs: %d bytes' % len(junit.encode('utf-8')))
    assert len(cases) == 10000 and [case.get('name') for case in cases] == sorted(report['hosts'])
    assert (suite.get('tests'), suite.get('failures'), suite.get('skipped')) == (
        '10000', str(summary['noncompliant']), str(summary['not_in_defender']))
    assert root.find('.//system-out') is None  # no per-host outcome dump
    order = [name for name, dummy in ranked_kbs(report)]
    for case in cases:
        host = report['hosts'][case.get('name')]
        children = [child.tag for child in case]
        if host['status'] == 'compliant':
            assert children == []
        elif host['status'] == 'not_in_defender':
            assert children == ['skipped']
        else:
            failure = case.find('failure')
            assert children == ['failure']
            bad = sorted((kb for kb, outcome in host['kbs'].items() if outcome in NONCOMPLIANT), key=order.index)
            lines = failure.text.split('\n')
            assert [line.split(':', 1)[0] for line in lines] == bad  # worst KB first
            message = failure.get('message')
            assert message.startswith('noncompliant: ' + '; '.join(lines[:5]))
            assert message.endswith('; and %d more' % (len(bad) - 5)) if len(bad) > 5 else message == 'noncompliant: ' + '; '.join(lines)


def test_host_groups_partition_the_noncompliant_hosts(fleet):
    report = fleet['report']
    groups = host_groups(report)
    noncompliant = sorted(name for name, host in report['hosts'].items() if host['status'] == 'noncompliant')
    grouped = [name for dummy, names in groups for name in names]
    assert sorted(grouped) == noncompliant and len(grouped) == len(set(grouped)) == report['summary']['noncompliant']
    assert len(set(need for need, dummy in groups)) == len(groups)
    order = [name for name, dummy in ranked_kbs(report)]
    for need, names in groups:
        assert names == sorted(names)
        assert [outcome for outcome, dummy in need] == [outcome for outcome in NONCOMPLIANT if outcome in dict(need)]
        for outcome, kbs in need:
            assert list(kbs) == sorted(kbs, key=order.index)
        for name in names:
            kbs = report['hosts'][name]['kbs']
            assert dict(need) == dict((outcome, tuple(sorted((kb for kb, value in kbs.items() if value == outcome), key=order.index)))
                                      for outcome in NONCOMPLIANT if outcome in kbs.values())
    sizes = [len(names) for dummy, names in groups]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > 100


def test_host_groups_of_a_hand_made_report():
    report = sample_report()
    report['hosts']['odd04'] = {'status': 'noncompliant', 'kbs': {'KB5034122': 'installed'}}  # says noncompliant, lists no KB
    report['hosts']['app03'] = dict(report['hosts']['app02'])
    assert host_groups(report) == [
        ((('missing', ('KB5034122',)),), ['app02', 'app03']),
        ((('missing', ('KB5034122', HOSTILE_KB)), ('failed', ('KB5034441',)), ('pending_reboot', ('KB5035849',))), [HOSTILE_HOST]),
        ((), ['odd04']),
    ]
    # In the grouped layout, such a group says so.
    report = hosts_kbs_report(101, 1)
    report['hosts']['odd'] = {'status': 'noncompliant', 'kbs': {'KB5030000': 'installed'}}
    assert host_groups(report)[-1] == ((), ['odd'])
    assert '\n| 1 | no KB listed |  |  | odd |\n' in render_markdown(report)
    assert '<span class="count">1 host</span> \u00b7 no KB listed (see <code>kb_patching.json</code>)' in render_html(report)


def test_fleet_output_is_deterministic(fleet):
    flipped = reversed_report(fleet['report'])
    assert list(flipped['hosts'])[0] != list(fleet['report']['hosts'])[0]
    assert render_html(flipped) == fleet['html']
    assert render_markdown(flipped) == fleet['markdown']
    assert render_junit(flipped) == fleet['junit']
    assert fleet_report() == fleet['report']


def test_worst_case_fleet_stays_within_the_floors():
    """Every host noncompliant on its own random set of KBs: a group each, still bounded."""
    report = fleet_report(stragglers=1.0)
    groups = host_groups(report)
    assert len(groups) > 8000
    assert len(render_html(report).encode('utf-8')) < 5 * MB
    assert len(render_markdown(report).splitlines()) < 200
    assert len(ET.fromstring(render_junit(report).encode('utf-8')).findall('testsuite/testcase')) == 10000


# -------------------------------------------------------------------------------------- filters

def test_filters_render_and_reject_non_dicts():
    filters = FilterModule().filters()
    renderers = ['kb_patching_report_html', 'kb_patching_report_junit', 'kb_patching_report_markdown']
    assert set(renderers) <= set(filters)
    report = sample_report()
    assert filters['kb_patching_report_html'](report) == render_html(report)
    assert filters['kb_patching_report_junit'](report) == render_junit(report)
    assert filters['kb_patching_report_markdown'](report) == render_markdown(copy.deepcopy(report))
    with pytest.raises(AnsibleFilterError, match='kb_patching_report_html expects the kb_patching report dict'):
        filters['kb_patching_report_html'](['not', 'a', 'report'])
