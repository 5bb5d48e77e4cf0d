# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""defender.tvm.software_info run as Ansible runs it: args in, one JSON result out.

The network is the ``defender_api`` table (tests/unit/plugins/conftest.py); everything between
the module's arguments and the client's GETs is the real code.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
import yaml

from ansible_collections.defender.tvm.plugins.module_utils._client import DefenderClient
from ansible_collections.defender.tvm.plugins.module_utils._errors import (
    AuthenticationError, PermissionDeniedError, ResponseError, TransportError)
from ansible_collections.defender.tvm.plugins.module_utils._options import NO_CREDENTIALS_MSG
from ansible_collections.defender.tvm.plugins.modules import software_info

pytestmark = pytest.mark.usefixtures('clean_environment')

CREDENTIALS = dict(tenant_id='11111111-2222-3333-4444-555555555555', client_id='aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee',
                   client_secret='unit-client-secret-value')
EDGE, WINDOWS = 'microsoft-_-edge', 'microsoft-_-windows_11'
DEVICE_A, DEVICE_B = 'a' * 40, 'b' * 40
RETURN = yaml.safe_load(software_info.RETURN)
SOFTWARE_KEYS = set(RETURN['software']['contains']) - {'machine_references'}


def entity(software_id, weaknesses=3):
    """A software entity as Defender sends it."""
    vendor, name = software_id.split('-_-')
    return {'id': software_id, 'name': name, 'vendor': vendor, 'weaknesses': weaknesses, 'publicExploit': True,
            'activeAlert': False, 'exposedMachines': 7, 'impactScore': 1.5}


def reference(device_id, name):
    return {'id': device_id, 'computerDnsName': name, 'osPlatform': 'Windows11', 'rbacGroupName': 'Workstations'}


def args(**values):
    return dict(CREDENTIALS, **values)


@pytest.fixture
def software_api(defender_api):
    defender_api.routes.update({
        'Software': [entity(EDGE), entity(WINDOWS, 0), entity(EDGE)],  # the listing can repeat an ID
        'Software/%s' % EDGE: entity(EDGE),
        'Software/%s' % WINDOWS: entity(WINDOWS, 0),
        'Software/%s/machineReferences' % EDGE: [reference(DEVICE_B, 'ws-b.contoso.local'),
                                                 reference(DEVICE_A, 'ws-a.contoso.local')],
        'Software/%s/machineReferences' % WINDOWS: [reference(DEVICE_A, 'ws-a.contoso.local')],
    })
    return defender_api


@pytest.mark.parametrize('patch_ansible_module', [args(vendor='Microsoft', name="O'Neil", filter="startswith(name,'o')")],
                         indirect=True)
@pytest.mark.usefixtures('patch_ansible_module')
def test_the_inventory_is_filtered_and_each_software_listed_once(software_api, run_module):
    oneil = dict(entity(EDGE), id="microsoft-_-o'neil", name="o'neil")
    # the table answers by path: a server that ignores $filter, and repeats an ID
    software_api.routes['Software'] = [entity(EDGE), oneil, entity(WINDOWS, 0), oneil]
    rc, result, dummy = run_module(software_info.main)

    assert rc == 0 and result['changed'] is False and 'failed' not in result
    assert set(result) - {'changed', 'invocation'} == set(RETURN)
    assert len(software_api.requests) == 1 and software_api.paths() == ['Software']
    query = software_api.query(software_api.requests[0])
    assert "$filter=vendor eq 'Microsoft' and name eq 'O''Neil' and (startswith(name,'o'))" in query
    assert '$top=10000' in query
    # vendor and name are checked on what came back (ignoring case, as Defender compares); the
    # user's own OData filter is left to the server
    assert [entry['id'] for entry in result['software']] == ["microsoft-_-o'neil"]
    assert result['software'][0] == {'id': "microsoft-_-o'neil", 'name': "o'neil", 'vendor': 'microsoft', 'weaknesses': 3,
                                     'public_exploit': True, 'active_alert': False, 'exposed_machines': 7,
                                     'impact_score': 1.5}
    assert set(result['software'][0]) == SOFTWARE_KEYS
    assert result['not_found'] == []


@pytest.mark.parametrize('patch_ansible_module', [args(filter="startswith(name,'e')")], indirect=True)
@pytest.mark.usefixtures('patch_ansible_module')
def test_a_users_own_filter_alone_is_passed_as_given(software_api, run_module):
    rc, result, dummy = run_module(software_info.main)

    assert rc == 0
    assert "$filter=(startswith(name,'e'))" in software_api.query(software_api.requests[0])
    assert [entry['id'] for entry in result['software']] == [EDGE, WINDOWS]  # what the server sent, once each


@pytest.mark.parametrize('patch_ansible_module', [args(software_ids=[WINDOWS, EDGE], vendor='contoso',
                                                       machine_references=True)], indirect=True)
@pytest.mark.usefixtures('patch_ansible_module')
def test_software_ids_with_their_devices_ignore_the_inventory_filters(software_api, run_module):
    rc, result, dummy = run_module(software_info.main)

    assert rc == 0 and result['changed'] is False
    assert 'Software' not in software_api.paths()  # vendor is ignored with software_ids: no listing
    assert sorted(software_api.paths()) == sorted(['Software/%s' % WINDOWS, 'Software/%s' % EDGE,
                                                   'Software/%s/machineReferences' % WINDOWS,
                                                   'Software/%s/machineReferences' % EDGE])
    assert [entry['id'] for entry in result['software']] == [WINDOWS, EDGE]
    assert set(result['software'][0]) == SOFTWARE_KEYS | {'machine_references'}
    edge_devices = result['software'][1]['machine_references']
    assert edge_devices == [  # sorted by name
        {'id': DEVICE_A, 'computer_dns_name': 'ws-a.contoso.local', 'os_platform': 'Windows11',
         'rbac_group_name': 'Workstations'},
        {'id': DEVICE_B, 'computer_dns_name': 'ws-b.contoso.local', 'os_platform': 'Windows11',
         'rbac_group_name': 'Workstations'}]
    assert set(edge_devices[0]) == set(RETURN['software']['contains']['machine_references']['contains'])


@pytest.mark.parametrize('patch_ansible_module', [args(software_ids=[EDGE], machine_references=True, details=False)],
                         indirect=True)
@pytest.mark.usefixtures('patch_ansible_module')
def test_details_false_fetches_only_the_devices(software_api, run_module):
    rc, result, dummy = run_module(software_info.main)

    assert rc == 0
    assert software_api.paths() == ['Software/%s/machineReferences' % EDGE]
    assert [sorted(entry) for entry in result['software']] == [['id', 'machine_references']]


@pytest.mark.parametrize('ignore_unknown', [False, True])
def test_unknown_software_ids_fail_or_are_listed(software_api, module_args, run_module, ignore_unknown):
    module_args(args(software_ids=[EDGE, 'contoso-_-nothing'], ignore_unknown=ignore_unknown))
    rc, result, dummy = run_module(software_info.main)

    if ignore_unknown:
        assert rc == 0
        assert result['not_found'] == ['contoso-_-nothing']
        assert [entry['id'] for entry in result['software']] == [EDGE]
    else:
        assert rc == 1 and result['failed'] is True
        assert result['msg'].startswith('Defender does not know 1 software ID: contoso-_-nothing. ')
        assert 'ignore_unknown: true' in result['msg']
        assert 'exception' not in result


@pytest.mark.parametrize('patch_ansible_module, message', [
    # ansible-core words the type of the value differently across versions
    (args(machine_references='perhaps'), ("argument 'machine_references' is of type", 'convert to bool')),
    (args(details='perhaps'), ("argument 'details' is of type", 'convert to bool')),
    (args(software_ids={'id': EDGE}), ("argument 'software_ids' is of type", 'convert to list')),
    (args(requests_per_minute='lots'), ("argument 'requests_per_minute' is of type", 'convert to int')),
    (args(machine_ids=[DEVICE_A]), ('Unsupported parameters for', 'machine_ids.')),
    (args(cloud='moon'), 'value of cloud must be one of: dod, gcc, gcc_high, public, got: moon'),
    (args(software_ids=[]), 'software_ids must list at least one ID'),
    (args(software_ids=['.']), "software_ids '.' is not a valid ID"),
    (args(software_ids=[EDGE, ' ']), 'software_ids must not be empty or blank'),
    (args(requests_per_minute=-1), 'requests_per_minute must be >= 0, got -1'),
    (args(max_retries=51), 'max_retries must be between 0 and 50, got 51'),
    (args(authority_url='https://login.microsoftonline.com/contoso'), 'authority_url must be the host only'),
    (args(validate_certs=True, ca_path='/nonexistent/ca.pem'), 'ca_path /nonexistent/ca.pem is not a readable file'),
    (args(client_certificate_path='/nonexistent/app.pem'), 'Give exactly one credential'),
    (dict(vendor='microsoft'), NO_CREDENTIALS_MSG),
], indirect=['patch_ansible_module'])
@pytest.mark.usefixtures('patch_ansible_module')
def test_bad_arguments_are_refused_before_any_request(defender_api, fail_json_calls, run_module, message):
    rc, result, dummy = run_module(software_info.main)

    assert rc == 1 and result['failed'] is True
    for fragment in (message if isinstance(message, tuple) else (message,)):
        assert fragment in result['msg']
    assert 'exception' not in result
    assert [sorted(call) for call in fail_json_calls] == [['msg']]  # no traceback sent
    assert defender_api.requests == []


@pytest.mark.parametrize('error', [
    AuthenticationError('Entra ID refused the token request (invalid_client). Fix: check client_secret'),
    PermissionDeniedError('Listing the software inventory failed with HTTP 403: the app needs Software.Read.All'),
    TransportError('Listing the software inventory failed after 5 retries: HTTP 503'),
    ResponseError('Listing the software inventory returned no OData collection'),
])
def test_defender_errors_fail_with_their_message_and_no_traceback(software_api, module_args, fail_json_calls, run_module,
                                                                  error):
    software_api.routes['Software'] = error
    module_args(args(vendor='microsoft'))
    rc, result, raw = run_module(software_info.main)

    assert rc == 1 and result['failed'] is True
    assert result['msg'] == str(error)
    assert 'exception' not in result
    assert fail_json_calls == [{'msg': str(error)}]  # no traceback sent, whatever ansible-core does with one
    assert 'Traceback' not in raw
    assert 'software' not in result


def test_an_unexpected_exception_keeps_its_traceback_out_of_the_message(software_api, module_args, fail_json_calls,
                                                                        run_module, monkeypatch):
    def query(client, **kwargs):
        raise KeyError('impactScore')

    monkeypatch.setattr(software_info, 'query_software', query)
    module_args(args(vendor='microsoft'), tracebacks=True)
    rc, result, dummy = run_module(software_info.main)

    assert rc == 1 and result['failed'] is True
    assert result['msg'] == "Unexpected KeyError: 'impactScore'"
    assert 'Traceback (most recent call last)' in result['exception']
    assert [call['exception'] for call in fail_json_calls] == [result['exception']]
    assert "KeyError: 'impactScore'" in result['exception']


def test_the_options_reach_the_query(software_api, module_args, run_module, monkeypatch):
    seen = []

    def query(client, **kwargs):
        seen.append((isinstance(client, DefenderClient), kwargs))
        return {'software': [], 'not_found': []}

    monkeypatch.setattr(software_info, 'query_software', query)
    module_args(args(software_ids='%s,%s' % (EDGE, WINDOWS), vendor='microsoft', name='edge', filter="id eq 'x'",
                     machine_references='yes', ignore_unknown='on', details='no'))
    rc, result, dummy = run_module(software_info.main)

    assert rc == 0, result.get('msg')
    assert seen == [(True, dict(software_ids=[EDGE, WINDOWS], vendor='microsoft', name='edge', odata_filter="id eq 'x'",
                                machine_references=True, ignore_unknown=True, details=False))]
    assert software_api.requests == []


def test_check_mode_runs_the_same_read_only_query(software_api, module_args, run_module):
    answers = []
    for check_mode in (False, True):
        module_args(args(software_ids=[EDGE], machine_references=True, _ansible_check_mode=check_mode))
        rc, result, dummy = run_module(software_info.main)
        assert rc == 0 and 'skipped' not in result and result['changed'] is False
        result.pop('invocation', None)  # ansible-core 2.21 no longer returns it
        answers.append(result)
    assert answers[0] == answers[1]
    assert answers[1]['software'][0]['machine_references']  # the query ran in check mode too
    assert len(software_api.requests) == 4


@pytest.mark.parametrize('fails', [False, True])
def test_no_log_options_never_appear_in_the_output(software_api, module_args, run_module, secrets, fails):
    values = [secrets[name] for name in ('client_secret', 'client_certificate_password', 'access_token')]
    leak = 'server echoed %s' % ' '.join(values)
    if fails:
        software_api.routes['Software'] = PermissionDeniedError('Forbidden: %s' % leak)
    else:
        software_api.routes['Software'] = [dict(entity(EDGE), name=leak)]
    module_args(dict(tenant_id=CREDENTIALS['tenant_id'], client_id=CREDENTIALS['client_id'], **secrets))
    rc, result, raw = run_module(software_info.main)

    assert rc == (1 if fails else 0)
    assert software_api.requests  # the secrets were in use, not refused
    for value in values:
        assert value not in raw
    if 'invocation' in result:  # up to ansible-core 2.20: the arguments come back, masked
        module_args_out = result['invocation']['module_args']
        for name in ('client_secret', 'client_certificate_password', 'access_token'):
            assert module_args_out[name] == 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'
    shown = result['msg'] if fails else result['software'][0]['name']
    assert shown.count('********') == 3
