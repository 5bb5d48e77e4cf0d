# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters that render the kb_patching report dict as JUnit XML, Markdown and HTML.

Several filters share this file, so their documentation lives in the sidecar files
kb_report_junit.yml, kb_report_markdown.yml and kb_report_html.yml.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.defender.tvm.plugins.plugin_utils.kb_report import render_html, render_junit, render_markdown


def _renderer(name, render):
    def kb_report_filter(report):
        # A clear message beats a renderer's AttributeError when a task passes the wrong variable.
        if not isinstance(report, Mapping):
            raise AnsibleFilterError('%s expects the kb_patching report dict, got %s' % (name, type(report).__name__))
        return render(report)
    kb_report_filter.__name__ = name
    return kb_report_filter


class FilterModule:
    """The kb_patching report renderers."""

    def filters(self):
        return {
            'kb_report_junit': _renderer('kb_report_junit', render_junit),
            'kb_report_markdown': _renderer('kb_report_markdown', render_markdown),
            'kb_report_html': _renderer('kb_report_html', render_html),
        }
