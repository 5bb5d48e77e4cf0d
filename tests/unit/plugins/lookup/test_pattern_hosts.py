# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import lookup_loader

GROUPS = {'all': ['ws-01', 'ws-02', 'srv-01', 'srv-02'], 'ungrouped': [], 'windows': ['ws-01', 'ws-02', 'srv-01'],
          'missing_kb5034122': ['ws-02', 'srv-01', 'srv-02'], 'prod': ['srv-01', 'srv-02']}


def lookup(pattern, limit=None):
    variables = {'groups': GROUPS}
    if limit is not None:
        variables['ansible_limit'] = limit
    return lookup_loader.get('defender.tvm.pattern_hosts', loader=DataLoader()).run([pattern], variables)


@pytest.mark.parametrize('pattern,limit,expected', [
    ('windows', None, ['ws-01', 'ws-02', 'srv-01']),
    ('windows', 'missing_kb5034122', ['ws-02', 'srv-01']),           # --limit applies
    ('windows:&prod', None, ['srv-01']),
    ('windows:!ws-0*', None, ['srv-01']),
    ('windows', 'srv-02', []),                                       # the limit leaves none of them
    ('missing_kb5034122', 'prod,ws-02', ['ws-02', 'srv-01', 'srv-02']),
    ('~srv-0[12]', 'windows', ['srv-01']),
    ('nothing', None, []),
])
def test_the_hosts_a_play_on_the_pattern_would_run_on(pattern, limit, expected):
    assert sorted(lookup(pattern, limit)) == sorted(expected)


def test_a_limit_file_is_read_as_ansible_playbook_reads_it(tmp_path):
    limit = tmp_path / 'retry'
    limit.write_text('ws-01\nsrv-02\n')
    assert lookup('windows', '@%s' % limit) == ['ws-01']
