# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""defender.tvm.missing_kbs (lookup) end to end, and where it takes its options from."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.defender.tvm.tests.integration.helpers import expected_records

pytestmark = pytest.mark.representative

IDS = ['microsoft-_-windows_11', 'microsoft-_-office', 'microsoft-_-.net_framework']


def expected_flat(emulator, ids):
    return [dict(record, software_id=sid) for sid in ids
            for record in expected_records(emulator.data['software'][sid]['missing_kbs'])]


def test_lookup_returns_one_flat_list_in_term_order(ansible, emulator):
    run = ansible.run('lookup', extra_vars={'terms': [IDS[0], IDS[1:]]})  # lists are flattened
    assert run.rc == 0, run
    assert run.result['records'] == expected_flat(emulator, IDS)
    assert emulator.stats()['token_requests'] == 1
    assert emulator.stats()['api_by_route']['software_missing_kbs'] == 3


def test_lookup_unknown_ids_fail_or_are_skipped_with_a_warning(ansible, emulator):
    run = ansible.run('lookup', extra_vars={'terms': [IDS[0], 'nobody-_-nothing']})
    assert run.result['failed'] is True and 'nobody-_-nothing' in run.result['msg']
    run = ansible.run('lookup', extra_vars={'terms': [IDS[0], 'nobody-_-nothing'],
                                            'lookup_kwargs': {'ignore_unknown': True}})
    assert run.rc == 0, run
    assert run.result['records'] == expected_flat(emulator, IDS[:1])
    assert 'Defender does not know these software IDs, skipped: nobody-_-nothing' in run.output


def test_lookup_keyword_arguments_beat_the_environment(ansible, emulator):
    env = ansible.credentials()
    env['MDE_CLIENT_SECRET'] = 'wrong-secret'
    run = ansible.run('lookup', env=env, extra_vars={
        'terms': IDS[:1], 'lookup_kwargs': {'client_secret': emulator.clients['secret']['client_secret']}})
    assert run.rc == 0, run


def test_lookup_reads_ansible_mde_variables(ansible, emulator):
    app = emulator.clients['secret']
    env = {'MDE_CLIENT_SECRET': 'wrong-secret-that-variables-must-beat'}
    run = ansible.run('lookup_variables', env=env, extra_vars={
        'terms': IDS[:1], 'emu_tenant_id': emulator.tenant_id, 'emu_client_id': app['client_id'],
        'emu_client_secret': app['client_secret'], 'emu_url': emulator.url, 'emu_ca_path': emulator.ca_path})
    assert run.rc == 0, run
    assert run.result['records'] == expected_flat(emulator, IDS[:1])


def test_lookup_reads_ansible_cfg(ansible, emulator, tmp_path):
    app = emulator.clients['secret']
    cfg = tmp_path / 'ansible.cfg'
    settings = (emulator.tenant_id, app['client_id'], app['client_secret'], emulator.url, emulator.url,
                emulator.ca_path)
    cfg.write_text(u'[defender_tvm]\ntenant_id = %s\nclient_id = %s\nclient_secret = %s\napi_url = %s\n'
                   u'authority_url = %s\nca_path = %s\n' % settings)
    run = ansible.run('lookup', env={'ANSIBLE_CONFIG': str(cfg)}, extra_vars={'terms': IDS[:1]})
    assert run.rc == 0, run
    assert run.result['records'] == expected_flat(emulator, IDS[:1])


def test_lookup_environment_prefers_mde_names_over_azure_names(ansible, emulator):
    env = ansible.credentials(prefix='AZURE_')
    env['AZURE_CLIENT_SECRET'] = 'wrong-secret'
    env['MDE_CLIENT_SECRET'] = emulator.clients['secret']['client_secret']
    run = ansible.run('lookup', env=env, extra_vars={'terms': IDS[:1]})
    assert run.rc == 0, run
    run = ansible.run('module', env=env, extra_vars={'software_ids': IDS[:1]})
    assert run.rc == 0 and not run.result.get('failed'), run
