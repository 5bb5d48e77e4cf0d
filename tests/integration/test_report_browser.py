# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The HTML report as people see it: rendered in a real headless Chromium, asserted on what is visible.

Needs Debian's chromium and chromium-driver (scripts/install-browser.sh) and selenium (requirements-dev.txt).
A missing browser fails the test rather than skipping it, so CI cannot silently stop checking the page.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import os
import shutil

import pytest

from ansible_collections.defender.tvm.plugins.plugin_utils._kb_report import host_groups, ranked_kbs, render_html
from ansible_collections.defender.tvm.tests.unit.plugins.filter.report_samples import HOSTILE_HOST, empty_report, fleet_report, sample_report

pytestmark = pytest.mark.once

CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
CHROMEDRIVER = shutil.which('chromedriver') or '/usr/bin/chromedriver'
# The machine may have no internet: without the background-networking flags Chromium waits on
# refused connections (updates, sync, field trials) and the session hangs.
CHROMIUM_FLAGS = ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
                  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', '--window-size=1400,1000')


@contextlib.contextmanager
def chromium(tmp_path):
    """A headless Chromium with a fresh profile, driven by chromedriver; fails (not skips) when absent."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail('no headless browser (%s missing): run scripts/install-browser.sh' % ', '.join(missing))
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail('selenium is missing: pip install -r requirements-dev.txt (scripts/setup.sh does)')
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument('--user-data-dir=%s' % (tmp_path / 'chromium-profile'))
    # Giving chromedriver's path keeps Selenium Manager from trying to download a driver.
    service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / 'chromedriver.log'))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(60)
        yield driver
    finally:
        driver.quit()


def open_report(driver, tmp_path, report):
    """Write the page and load it; returns its size in bytes. driver.get returns once the page
    has loaded (Selenium's normal page load strategy); the wait also checks that it completed."""
    from selenium.webdriver.support.ui import WebDriverWait
    page = tmp_path / 'kb_patching.html'
    page.write_text(render_html(report), encoding='utf-8')
    driver.get(page.as_uri())
    WebDriverWait(driver, 60).until(lambda d: d.execute_script('return document.readyState') == 'complete')
    return page.stat().st_size


def screenshot(driver, path):
    """The whole page: make the viewport as tall as the document first."""
    height = driver.execute_script('return document.documentElement.scrollHeight')
    driver.execute_cdp_cmd('Emulation.setDeviceMetricsOverride', {'width': 1400, 'height': height, 'deviceScaleFactor': 1, 'mobile': False})
    driver.save_screenshot(str(path))
    print('screenshot: %s' % path)


def test_report_renders_visibly_in_chromium(tmp_path):
    from selenium.webdriver.common.by import By
    with chromium(tmp_path) as driver:
        open_report(driver, tmp_path, sample_report())
        assert driver.title == 'KB patching report \u2013 2026-11-27T15:00:00Z'
        heading = driver.find_element(By.TAG_NAME, 'h1')
        assert heading.is_displayed() and heading.text == 'KB patching report'
        # Self-contained: the browser fetched nothing besides the page itself.
        assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0

        figures = {'hosts': '4', 'compliant': '1', 'noncompliant': '2', 'not_in_defender': '1', 'kbs': '4',
                   'missing': '3', 'installed': '2', 'failed': '1', 'pending_reboot': '1', 'not_offered': '2'}
        for key, value in figures.items():
            figure = driver.find_element(By.ID, 'figure-' + key)
            assert figure.is_displayed(), key
            assert figure.find_element(By.TAG_NAME, 'dd').text == value, key
        assert driver.find_element(By.CSS_SELECTOR, '#figure-not_in_defender dt').text.lower() == 'not in defender'

        chart = driver.find_element(By.CSS_SELECTOR, 'svg.chart')
        assert chart.is_displayed() and chart.get_attribute('role') == 'img'
        bars = chart.find_elements(By.CSS_SELECTOR, 'rect.bar')
        widths = [rect.rect['width'] for rect in bars]
        assert len(bars) == 4 and all(rect.is_displayed() for rect in bars)
        assert all(width > 0 for width in widths) and widths == sorted(widths, reverse=True), widths
        values = [text.text for text in chart.find_elements(By.CSS_SELECTOR, 'text.value')]
        assert values[0] == '25 CVEs \u00b7 1 host needs it \u00b7 missing on 12 devices', values

        rows = driver.find_elements(By.CSS_SELECTOR, '#matrix tbody tr')
        assert len(rows) == 4 and all(row.is_displayed() for row in rows)
        names = [row.find_element(By.TAG_NAME, 'th').text.split('\n')[0] for row in rows]
        assert names == sorted(['web01', HOSTILE_HOST, 'app02', 'ghost03'])
        # The hostile host name shows as text; its markup never became elements.
        assert not driver.find_elements(By.TAG_NAME, 'img') and not driver.find_elements(By.TAG_NAME, 'script')

        columns = [th.text.split('\n')[0] for th in driver.find_elements(By.CSS_SELECTOR, '#matrix thead th')]
        hostile_row = rows[names.index(HOSTILE_HOST)]
        cells = hostile_row.find_elements(By.TAG_NAME, 'td')
        failed = cells[columns.index('KB5034441') - 1].find_element(By.CSS_SELECTOR, '.o')
        assert failed.is_displayed() and failed.text.endswith('Failed'), failed.text
        assert failed.get_attribute('title').startswith('0x80240022')
        missing = cells[columns.index('KB5034122') - 1].find_element(By.CSS_SELECTOR, '.o')
        assert missing.text.endswith('Missing')
        # Colour tells them apart too (the label alone is enough without it).
        assert failed.value_of_css_property('background-color') != missing.value_of_css_property('background-color')
        assert cells[0].text == 'Noncompliant'
        assert rows[names.index('ghost03')].find_elements(By.TAG_NAME, 'td')[0].text == 'Not in Defender'

        errors = driver.find_element(By.CSS_SELECTOR, 'ul.errors')
        assert errors.is_displayed() and HOSTILE_HOST in errors.text and '<retry>' in errors.text
        screenshot(driver, tmp_path / 'kb_patching.png')
    assert (tmp_path / 'kb_patching.png').stat().st_size > 10000


def test_empty_report_says_nothing_to_report(tmp_path):
    from selenium.webdriver.common.by import By
    with chromium(tmp_path) as driver:
        open_report(driver, tmp_path, empty_report())
        message = driver.find_element(By.ID, 'nothing')
        assert message.is_displayed() and message.text.startswith('Nothing to report')
        assert driver.find_element(By.CSS_SELECTOR, '#figure-hosts dd').text == '0'
        assert not driver.find_elements(By.TAG_NAME, 'svg') and not driver.find_elements(By.TAG_NAME, 'table')
        screenshot(driver, tmp_path / 'kb_patching_empty.png')


def test_fleet_report_leads_with_what_to_act_on(tmp_path):
    """10,000 hosts x 50 KBs: the page loads, under 5 MB, and shows the figures, the worst KBs and the
    first group of noncompliant hosts; the rest is collapsed, not gone."""
    from selenium.webdriver.common.by import By
    report = fleet_report()
    summary, groups, ranked = report['summary'], host_groups(report), ranked_kbs(report)
    with chromium(tmp_path) as driver:
        size = open_report(driver, tmp_path, report)
        print('kb_patching.html at 10,000 hosts x 50 KBs: %d bytes' % size)
        assert size < 5 * 1024 * 1024
        assert driver.title == 'KB patching report \u2013 2026-11-27T15:00:00Z'
        assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
        meta = driver.find_element(By.CSS_SELECTOR, 'header .meta')
        assert 'Source export (json)' in meta.text and 'Defender asked at 2026-11-27T06:12:00Z' in meta.text

        # The summary figures, with thousands separators, and the share of each status.
        for key in ('hosts', 'compliant', 'noncompliant', 'not_in_defender', 'kbs'):
            figure = driver.find_element(By.ID, 'figure-' + key)
            assert figure.is_displayed(), key
            assert figure.find_element(By.TAG_NAME, 'dd').text == '{:,}'.format(summary[key]), key
        assert driver.find_element(By.CSS_SELECTOR, '#figure-noncompliant dd.share').text == '%.1f%%' % (100.0 * summary['noncompliant'] / 10000)
        assert driver.find_element(By.ID, 'status-bar').is_displayed()

        # The worst KBs: ten bars in the KB order, each saying how many hosts here still need it.
        chart = driver.find_element(By.CSS_SELECTOR, 'svg.chart')
        assert chart.is_displayed()
        labels = [text.text for text in chart.find_elements(By.CSS_SELECTOR, 'text[text-anchor=end]')]
        assert labels == [name for name, dummy in ranked[:10]]
        first = ranked[0][1]
        need = first['hosts']['missing'] + first['hosts']['failed'] + first['hosts']['pending_reboot']
        assert chart.find_elements(By.CSS_SELECTOR, 'text.value')[0].text == '%d CVEs \u00b7 {:,} hosts need it \u00b7 missing on {:,} devices'.format(
            need, first['machine_missed_on']) % first['cve_addressed']
        # ... and every KB one click away, collapsed.
        all_kbs = driver.find_element(By.ID, 'all-kbs')
        assert all_kbs.get_attribute('open') is None and all_kbs.find_element(By.TAG_NAME, 'summary').text.startswith('All 50 KBs')
        assert not driver.find_element(By.CSS_SELECTOR, '#kbs tbody tr').is_displayed()
        assert not driver.find_elements(By.ID, 'matrix')

        # The first group of noncompliant hosts, open: its size, its KBs and its first hosts.
        need, names = groups[0]
        group = driver.find_element(By.ID, 'group-1')
        assert group.is_displayed() and group.get_attribute('open') is not None
        assert group.find_element(By.TAG_NAME, 'summary').text.startswith('{:,} hosts \u00b7 '.format(len(names)))
        assert group.find_element(By.CSS_SELECTOR, 'p.need').text.startswith('Need %d KBs:' % sum(len(kbs) for dummy, kbs in need))
        hosts = group.find_elements(By.CSS_SELECTOR, ':scope > ul.hosts > li')
        assert [li.text for li in hosts] == names[:100] and all(li.is_displayed() for li in hosts[:3])
        more = group.find_element(By.CSS_SELECTOR, 'details.more')
        assert more.find_element(By.TAG_NAME, 'summary').text == 'and {:,} more'.format(len(names) - 100)
        assert not more.find_element(By.CSS_SELECTOR, 'li').is_displayed()
        # The next groups: their summary line shows, their hosts are collapsed.
        second = driver.find_element(By.ID, 'group-2')
        assert second.get_attribute('open') is None and second.find_element(By.TAG_NAME, 'summary').is_displayed()
        assert second.find_element(By.TAG_NAME, 'summary').text.startswith('{:,} host'.format(len(groups[1][1])))
        assert not second.find_element(By.CSS_SELECTOR, 'li').is_displayed()

        # Hosts not in Defender listed; the compliant ones only counted until opened.
        absent = sorted(name for name, host in report['hosts'].items() if host['status'] == 'not_in_defender')
        first_absent = driver.find_element(By.CSS_SELECTOR, '#absent-hosts li')
        assert first_absent.is_displayed() and first_absent.text == absent[0]
        compliant = driver.find_element(By.ID, 'compliant-hosts')
        assert compliant.find_element(By.TAG_NAME, 'summary').text == '{:,} compliant hosts'.format(summary['compliant'])
        assert not compliant.find_element(By.TAG_NAME, 'li').is_displayed()
        pointer = driver.find_element(By.ID, 'json-pointer')
        assert pointer.is_displayed() and 'kb_patching.json' in pointer.text

        # The hostile host name is in the page as text only.
        assert not driver.find_elements(By.TAG_NAME, 'img') and not driver.find_elements(By.TAG_NAME, 'script')
        assert HOSTILE_HOST in driver.find_element(By.TAG_NAME, 'main').get_attribute('textContent')
        screenshot(driver, tmp_path / 'kb_patching_fleet.png')
    assert (tmp_path / 'kb_patching_fleet.png').stat().st_size > 10000
