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
from ansible_collections.defender.tvm.plugins.plugin_utils._kb_report import render_html, render_junit, render_markdown, worst_kbs

from ansible_collections.defender.tvm.tests.unit.plugins.filter.report_samples import (
    CATALOG, HOSTILE_HOST, HOSTILE_KB, empty_report, reversed_report, sample_report)


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
    svg = [attrs for tag, attrs in page.tags if tag == 'svg'][0]
    assert svg['role'] == 'img' and svg['aria-labelledby'] == 'chart-title chart-desc'
    assert tags.count('rect') == 4
    assert all(attrs.get('scope') in ('col', 'row') for tag, attrs in page.tags if tag == 'th')
    for figure, value in (('hosts', 4), ('compliant', 1), ('noncompliant', 2), ('not_in_defender', 1), ('kbs', 4),
                          ('missing', 3), ('installed', 2), ('failed', 1), ('pending_reboot', 1), ('not_offered', 2)):
        assert '<div class="figure" id="figure-%s"><dt>' % figure in text
        assert text.split('id="figure-%s"' % figure, 1)[1].split('</dd>', 1)[0].endswith('<dd>%d' % value)
    # Every outcome and status has its text label, not only its colour.
    for label in ('Missing', 'Installed', 'Failed', 'Pending reboot', 'Not offered', 'Compliant', 'Noncompliant', 'Not in Defender'):
        assert '> %s</span>' % label in text or '>%s</span>' % label in text
    assert text.count('<tr>') == 5


def test_html_chart_orders_by_cves():
    text = render_html(sample_report())
    chart = text.split('<svg', 1)[1].split('</svg>', 1)[0]
    positions = [chart.index('>%s</text>' % kb) for kb in ('KB5035849', 'KB5034122', 'KB5034441')]
    assert positions == sorted(positions)
    assert '25 CVEs \u00b7 missing on 12 devices' in chart


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
