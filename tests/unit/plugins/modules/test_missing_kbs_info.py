# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""defender.tvm.missing_kbs_info run as Ansible runs it: args in, one JSON result out.

The network is the ``defender_api`` table (tests/unit/plugins/conftest.py); everything between
the module's arguments and the client's GETs is the real code.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
import yaml

from ansible_collections.defender.tvm.plugins.module_utils._client import DefenderClient
from ansible_collections.defender.tvm.plugins.module_utils._errors import (
    AuthenticationError, ConfigurationError, PermissionDeniedError, ResponseError, TransportError)
from ansible_collections.defender.tvm.plugins.module_utils._options import NO_CREDENTIALS_MSG
from ansible_collections.defender.tvm.plugins.modules import missing_kbs_info

pytestmark = pytest.mark.usefixtures('clean_environment')

CREDENTIALS = dict(tenant_id='11111111-2222-3333-4444-555555555555', client_id='aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee',
                   client_secret='unit-client-secret-value')
EDGE, WINDOWS = 'microsoft-_-edge', 'microsoft-_-windows_11'
DEVICE_A, DEVICE_B = 'a' * 40, 'b' * 40
RETURN = yaml.safe_load(missing_kbs_info.RETURN)


def fix(kb, cves, missed=1, products=('windows_11',), name=None):
    """A missing-KB record as Defender sends it (PublicProductFixDto)."""
    return {'id': kb, 'name': name or 'Update %s' % kb, 'productsNames': list(products),
            'url': 'https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB%s' % kb,
            'machineMissedOn': missed, 'cveAddressed': cves}


def args(**values):
    return dict(CREDENTIALS, **values)


def documented(contains, given):
    """The keys of a RETURN ``contains`` block that a query with option ``given`` returns."""
    return set(key for key, doc in contains.items() if doc.get('returned') in (None, 'with O(%s)' % given))


@pytest.fixture
def software_api(defender_api):
    defender_api.routes.update({
        'Software/%s/getmissingkbs' % EDGE: [fix('1001', 3, 240, ['edge']), fix('1002', 14, 10, ['edge'])],
        'Software/%s/getmissingkbs' % WINDOWS: [fix('1002', 9, 50, ['windows_11'])],
    })
    return defender_api


@pytest.mark.parametrize('patch_ansible_module', [args(software_ids=[EDGE, WINDOWS, ' %s ' % EDGE])], indirect=True)
@pytest.mark.usefixtures('patch_ansible_module')
def test_software_ids_give_the_documented_result(software_api, run_module):
    rc, result, dummy = run_module(missing_kbs_info.main)

    assert rc == 0 and result['changed'] is False and 'failed' not in result
    assert software_api.paths() == ['Software/%s/getmissingkbs' % EDGE, 'Software/%s/getmissingkbs' % WINDOWS]
    assert set(result) - {'changed', 'invocation'} == set(RETURN)
    assert [entry['software_id'] for entry in result['results']] == [EDGE, WINDOWS]
    assert [[kb['kb'] for kb in entry['missing_kbs']] for entry in result['results']] == [['KB1002', 'KB1001'], ['KB1002']]
    for entry in result['results']:
        assert set(entry) == documented(RETURN['results']['contains'], 'software_ids')
        for kb in entry['missing_kbs']:
            assert set(kb) == documented(RETURN['missing_kbs']['contains'], 'neither')
    assert result['missing_kbs'] == [
        {'id': '1002', 'kb': 'KB1002', 'name': 'Update 1002', 'products_names': ['edge', 'windows_11'],
         'url': 'https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB1002', 'machine_missed_on': 50,
         'cve_addressed': 14, 'software_ids': [EDGE, WINDOWS]},
        {'id': '1001', 'kb': 'KB1001', 'name': 'Update 1001', 'products_names': ['edge'],
         'url': 'https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB1001', 'machine_missed_on': 240,
         'cve_addressed': 3, 'software_ids': [EDGE]},
    ]
    assert set(result['missing_kbs'][0]) == documented(RETURN['missing_kbs']['contains'], 'software_ids')
    assert result['accept_list'] == [r'KB1002(?:\s+KB\d+)*$', r'KB1001(?:\s+KB\d+)*$']
    assert result['not_found'] == []


@pytest.mark.parametrize('patch_ansible_module', [args(machine_ids=[DEVICE_A, 'srv01.contoso.local'])], indirect=True)
@pytest.mark.usefixtures('patch_ansible_module')
def test_machine_ids_resolve_names_and_count_the_devices(defender_api, run_module):
    defender_api.routes.update({
        'machines': [{'id': DEVICE_B, 'computerDnsName': 'srv01.contoso.local'}],
        'machines/%s/getmissingkbs' % DEVICE_A: [fix('2001', 5)],
        'machines/%s/getmissingkbs' % DEVICE_B: [fix('2001', 5), fix('2002', 1)],
    })
    rc, result, dummy = run_module(missing_kbs_info.main)

    assert rc == 0 and result['changed'] is False
    # a device ID is queried as it is; the names are looked up first, in one listing
    assert defender_api.paths() == ['machines', 'machines/%s/getmissingkbs' % DEVICE_A,
                                    'machines/%s/getmissingkbs' % DEVICE_B]
    assert defender_api.query(defender_api.requests[0]) == (
        "$filter=(computerDnsName eq 'srv01.contoso.local' or computerDnsName eq 'srv01')")
    assert [(e['machine_id'], e['computer_dns_name'], e['requested']) for e in result['results']] == [
        (DEVICE_A, None, DEVICE_A), (DEVICE_B, 'srv01.contoso.local', 'srv01.contoso.local')]
    for entry in result['results']:
        assert set(entry) == documented(RETURN['results']['contains'], 'machine_ids')
    assert [(kb['kb'], kb['machine_ids'], kb['machine_missed_on']) for kb in result['missing_kbs']] == [
        ('KB2001', [DEVICE_A, DEVICE_B], 2), ('KB2002', [DEVICE_B], 1)]
    assert set(result['missing_kbs'][0]) == documented(RETURN['missing_kbs']['contains'], 'machine_ids')


@pytest.mark.parametrize('patch_ansible_module, message', [
    (args(), 'one of the following is required: software_ids, machine_ids'),
    (args(software_ids=[EDGE], machine_ids=[DEVICE_A]), 'parameters are mutually exclusive: software_ids|machine_ids'),
    # ansible-core words the type of the value differently across versions
    (args(software_ids=[EDGE], ignore_unknown='sometimes'), ("argument 'ignore_unknown' is of type", 'convert to bool')),
    (args(software_ids=[EDGE], timeout='soon'), ("argument 'timeout' is of type", 'convert to float')),
    (args(software_ids=[EDGE], max_retries='many'), ("argument 'max_retries' is of type", 'convert to int')),
    (args(software_ids=[EDGE], cloud='moon'), 'value of cloud must be one of: dod, gcc, gcc_high, public, got: moon'),
    (args(software_ids=[EDGE], software_id=[EDGE]), ('Unsupported parameters for', 'software_id.')),
    (args(software_ids=[]), 'software_ids must list at least one ID'),
    (args(software_ids=[EDGE, '  ']), 'software_ids must not be empty or blank'),
    (args(software_ids=[EDGE, '..']), "software_ids '..' is not a valid ID"),
    (args(machine_ids=['srv01\x07']), "machine_ids 'srv01\\x07' contains control characters"),
    (args(software_ids=[EDGE], max_concurrency=0), 'max_concurrency must be between 1 and 64, got 0'),
    (args(software_ids=[EDGE], api_url='http://api.security.microsoft.com'), 'api_url must be an https:// URL'),
    (args(software_ids=[EDGE], tenant_id='not a tenant'), 'tenant_id must be a directory (tenant) ID'),
    (dict(software_ids=[EDGE]), NO_CREDENTIALS_MSG),
], indirect=['patch_ansible_module'])
@pytest.mark.usefixtures('patch_ansible_module')
def test_bad_arguments_are_refused_before_any_request(defender_api, fail_json_calls, run_module, message):
    rc, result, dummy = run_module(missing_kbs_info.main)

    assert rc == 1 and result['failed'] is True
    for fragment in (message if isinstance(message, tuple) else (message,)):
        assert fragment in result['msg']
    assert 'exception' not in result
    assert [sorted(call) for call in fail_json_calls] == [['msg']]  # no traceback sent
    assert defender_api.requests == []


@pytest.mark.parametrize('patch_ansible_module', [
    args(software_ids='%s, %s' % (EDGE, WINDOWS), ignore_unknown='yes', timeout='12.5', max_concurrency='1'),
], indirect=True)
@pytest.mark.usefixtures('patch_ansible_module')
def test_option_types_are_converted(software_api, monkeypatch, run_module):
    seen = []

    def query(client, **kwargs):
        seen.append((client.settings.timeout, client.settings.max_concurrency, kwargs))
        return {'results': [], 'missing_kbs': [], 'accept_list': [], 'not_found': []}

    monkeypatch.setattr(missing_kbs_info, 'query_missing_kbs', query)
    rc, result, dummy = run_module(missing_kbs_info.main)

    assert rc == 0, result.get('msg')
    assert seen == [(12.5, 1, {'software_ids': [EDGE, ' ' + WINDOWS], 'machine_ids': None, 'ignore_unknown': True})]


@pytest.mark.parametrize('ignore_unknown', [False, True])
def test_unknown_ids_fail_or_are_listed(software_api, module_args, run_module, ignore_unknown):
    module_args(args(software_ids=[EDGE, 'microsoft-_-nothing', 'contoso-_-nothing'], ignore_unknown=ignore_unknown))
    rc, result, dummy = run_module(missing_kbs_info.main)

    if ignore_unknown:
        assert rc == 0
        assert result['not_found'] == ['microsoft-_-nothing', 'contoso-_-nothing']
        assert [entry['software_id'] for entry in result['results']] == [EDGE]
    else:
        assert rc == 1 and result['failed'] is True
        assert result['msg'].startswith(
            'Defender does not know 2 software IDs: microsoft-_-nothing, contoso-_-nothing. ')
        assert 'ignore_unknown: true' in result['msg']
        assert 'exception' not in result


@pytest.mark.parametrize('error', [
    AuthenticationError('Entra ID refused the token request (invalid_client). Fix: check client_secret'),
    PermissionDeniedError('Getting the missing KBs failed with HTTP 403: the app needs Software.Read.All'),
    TransportError('Getting the missing KBs failed after 5 retries: HTTP 503'),
    ResponseError('Getting the missing KBs returned no OData collection'),
    ConfigurationError('ca_path /nowhere is not a readable file'),
])
def test_defender_errors_fail_with_their_message_and_no_traceback(software_api, module_args, fail_json_calls, run_module,
                                                                  error):
    software_api.routes['Software/%s/getmissingkbs' % WINDOWS] = error
    module_args(args(software_ids=[EDGE, WINDOWS], max_concurrency=1))
    rc, result, raw = run_module(missing_kbs_info.main)

    assert rc == 1 and result['failed'] is True
    assert result['msg'] == str(error)
    assert 'exception' not in result
    assert fail_json_calls == [{'msg': str(error)}]  # no traceback sent, whatever ansible-core does with one
    assert 'Traceback' not in raw
    assert 'results' not in result and 'missing_kbs' not in result  # no partial answer


def test_an_unexpected_exception_keeps_its_traceback_out_of_the_message(software_api, module_args, fail_json_calls,
                                                                        run_module, monkeypatch):
    def query(client, **kwargs):
        raise RuntimeError('the answer could not be parsed')

    monkeypatch.setattr(missing_kbs_info, 'query_missing_kbs', query)
    module_args(args(software_ids=[EDGE]), tracebacks=True)
    rc, result, dummy = run_module(missing_kbs_info.main)

    assert rc == 1 and result['failed'] is True
    assert result['msg'] == 'Unexpected RuntimeError: the answer could not be parsed'
    assert 'Traceback (most recent call last)' in result['exception']
    assert [call['exception'] for call in fail_json_calls] == [result['exception']]
    assert 'RuntimeError: the answer could not be parsed' in result['exception']


def test_check_mode_runs_the_same_read_only_query(software_api, module_args, run_module):
    answers = []
    for check_mode in (False, True):
        module_args(args(software_ids=[EDGE, WINDOWS], _ansible_check_mode=check_mode))
        rc, result, dummy = run_module(missing_kbs_info.main)
        assert rc == 0 and 'skipped' not in result and result['changed'] is False
        result.pop('invocation', None)  # ansible-core 2.21 no longer returns it
        answers.append(result)
    assert answers[0] == answers[1]
    assert answers[1]['missing_kbs']  # the query ran in check mode too
    assert len(software_api.requests) == 4


@pytest.mark.parametrize('fails', [False, True])
def test_no_log_options_never_appear_in_the_output(software_api, module_args, run_module, secrets, fails):
    values = [secrets[name] for name in ('client_secret', 'client_certificate_password', 'access_token')]
    leak = 'server echoed %s' % ' '.join(values)
    if fails:
        software_api.routes['Software/%s/getmissingkbs' % EDGE] = AuthenticationError('The token was refused: %s' % leak)
    else:
        software_api.routes['Software/%s/getmissingkbs' % EDGE] = [fix('1003', 2, name=leak)]
    module_args(dict(tenant_id=CREDENTIALS['tenant_id'], client_id=CREDENTIALS['client_id'], software_ids=[EDGE],
                     **secrets))
    rc, result, raw = run_module(missing_kbs_info.main)

    assert rc == (1 if fails else 0)
    assert software_api.requests  # the secrets were in use, not refused
    for value in values:
        assert value not in raw
    if 'invocation' in result:  # up to ansible-core 2.20: the arguments come back, masked
        module_args_out = result['invocation']['module_args']
        for name in ('client_secret', 'client_certificate_password', 'access_token'):
            assert module_args_out[name] == 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'
    shown = result['msg'] if fails else result['missing_kbs'][0]['name']
    assert shown.count('********') == 3


@pytest.mark.parametrize('fails', [False, True])
def test_the_client_is_closed_after_the_query(software_api, module_args, run_module, monkeypatch, fails):
    closed = []

    def close(client):
        closed.append(client)

    monkeypatch.setattr(DefenderClient, 'close', close)
    if fails:
        software_api.routes['Software/%s/getmissingkbs' % EDGE] = TransportError('HTTP 503 after 5 retries')
    module_args(args(software_ids=[EDGE]))
    rc, dummy, dummy_raw = run_module(missing_kbs_info.main)

    assert rc == (1 if fails else 0)
    assert len(closed) == 1 and closed[0].settings.tenant_id == CREDENTIALS['tenant_id']
