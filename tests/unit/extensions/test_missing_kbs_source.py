# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The defender.tvm.missing_kbs event source with an asyncio queue stand-in (the ansible.eda
pattern) and the delta reader stubbed: arguments, events, de-duplication, the checkpoint,
failures and cancellation."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import asyncio
import datetime
import json

import pytest

from ansible_collections.defender.tvm.extensions.eda.plugins.event_source import missing_kbs as source
from ansible_collections.defender.tvm.plugins.module_utils._errors import ConfigurationError, TransportError

pytestmark = pytest.mark.usefixtures('clean_environment')

CREDENTIALS = dict(tenant_id='11111111-2222-3333-4444-555555555555', client_id='aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee',
                   client_secret='unit-client-secret-value')
A, B = 'a' * 40, 'b' * 40
NOW = datetime.datetime(2024, 2, 20, 7, 0, tzinfo=datetime.timezone.utc)


class ListQueue(asyncio.Queue):
    """Collects the events a source puts."""

    def __init__(self):
        super(ListQueue, self).__init__()
        self.events = []

    async def put(self, item):
        self.events.append(item)


def kb(number, cves=1, when='2024-02-20T06:00:00Z'):
    return {'id': number, 'kb': 'KB' + number, 'name': 'Update %s' % number, 'url': 'u', 'software': ['windows_11'],
            'cve_addressed': cves, 'event_time': when}


def change(device, name, new=(), fixed=()):
    return {'device_id': device, 'device_name': name, 'os_platform': 'Windows11', 'rbac_group': 'Workstations',
            'new_kbs': list(new), 'fixed_kbs': list(fixed),
            'event_time': max([k['event_time'] for k in list(new) + list(fixed)] or [None])}


class Reads:
    """The delta reads the source makes (their since), answered in turn; then it is cancelled."""

    def __init__(self, *answers):
        self.answers, self.since = list(answers), []

    def __call__(self, client, since, devices=None, page_size=None):
        self.since.append(since)
        if not self.answers:
            raise asyncio.CancelledError()  # ends the endless loop, as ansible-rulebook would
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return dict({'records_read': 1, 'latest_event_time': None}, changes=answer)


@pytest.fixture
def run(monkeypatch, tmp_path):
    """``run(reads, **args)``: the source until the reads run out, its events and checkpoint."""
    monkeypatch.setattr(source, '_now', lambda: NOW)

    async def no_sleep(seconds):
        no_sleep.calls.append(seconds)
    no_sleep.calls = []
    monkeypatch.setattr(source.asyncio, 'sleep', no_sleep)
    closed = []
    monkeypatch.setattr(source.DefenderClient, 'close', lambda self: closed.append(True))

    def go(reads, machines=(), **args):
        monkeypatch.setattr(source, 'read_changes', reads)
        listings = go.listings = []

        def list_devices(client, odata_filter=None):
            listings.append(odata_filter)
            return list(machines)
        monkeypatch.setattr(source, 'list_devices', list_devices)
        queue = ListQueue()
        arguments = dict(CREDENTIALS, state_file=str(tmp_path / 'state.json'), **args)
        with pytest.raises(asyncio.CancelledError):
            asyncio.run(source.main(queue, arguments))
        assert closed, 'the client is closed when the source is cancelled'
        saved = json.loads((tmp_path / 'state.json').read_text()) if (tmp_path / 'state.json').exists() else None
        return queue.events, saved, no_sleep.calls
    return go


def test_one_event_per_device_whose_missing_kbs_grew(run):
    reads = Reads([change(A, 'web01.contoso.local', new=[kb('5034765', 3), kb('5034441', 1)], fixed=[kb('5034122')]),
                   change(B, 'db01.contoso.local', fixed=[kb('5034122')])])  # only fixed: no event
    events, saved, sleeps = run(reads, interval=60)
    assert events == [{
        'defender_tvm': {'device_id': A, 'device_name': 'web01.contoso.local',
                         'new_kbs': [{'id': '5034765', 'kb': 'KB5034765', 'cve_addressed': 3},
                                     {'id': '5034441', 'kb': 'KB5034441', 'cve_addressed': 1}],
                         'fixed_kbs': [{'id': '5034122', 'kb': 'KB5034122', 'cve_addressed': 1}],
                         'generated_time': '2024-02-20T06:00:00Z'},
        'meta': {'hosts': 'web01.contoso.local'}}]
    # six hours back, then the overlap before the time reached, but never before where it started
    assert reads.since == ['2024-02-20T01:00:00Z', '2024-02-20T01:00:00Z']
    assert sleeps == [60]
    assert saved['reached'] == '2024-02-20T07:00:00Z' and len(saved['emitted']) == 2


def test_min_cve_addressed_and_a_device_without_a_name(run):
    reads = Reads([change(A, None, new=[kb('5034765', 1)]), change(B, 'db01', new=[kb('5034441', 2)])])
    events, dummy, dummy2 = run(reads, min_cve_addressed=2)
    assert [(e['meta']['hosts'], [k['kb'] for k in e['defender_tvm']['new_kbs']]) for e in events] == [
        ('db01', ['KB5034441'])]
    reads = Reads([change(A, None, new=[kb('5034765', 1)])])
    events, dummy, dummy2 = run(reads, min_cve_addressed=1)
    assert events[0]['meta']['hosts'] == A  # no name: the device ID


def test_what_was_emitted_is_not_emitted_again_by_a_later_poll_or_after_a_restart(run):
    seen = [change(A, 'web01', new=[kb('5034765')])]
    events, saved, dummy = run(Reads(seen, seen))
    assert len(events) == 1  # the second poll reads the overlap again: nothing new
    reads = Reads(seen, [change(A, 'web01', new=[kb('5034765'), kb('5034441', when='2024-02-20T06:30:00Z')])])
    events, saved, dummy = run(reads)  # a restart, with the same state file
    assert reads.since[0] == '2024-02-20T01:00:00Z'  # resumed from the checkpoint
    assert [[k['kb'] for k in e['defender_tvm']['new_kbs']] for e in events] == [['KB5034441']]
    # a KB fixed and missing again later is a new event (its own time)
    events, dummy, dummy2 = run(Reads([change(A, 'web01', new=[kb('5034765', when='2024-02-20T06:59:00Z')])]))
    assert [[k['kb'] for k in e['defender_tvm']['new_kbs']] for e in events] == [['KB5034765']]


def test_the_event_names_the_host_as_the_inventory_plugin_names_the_device(run):
    # onboarded again: the old device (A) and the new one (B) share a name; the inventory plugin
    # names the one seen last by it and the other <name>_<device ID>
    machines = [{'id': A, 'computerDnsName': 'ws-dup01.contoso.local', 'lastSeen': '2024-01-30T06:00:00Z'},
                {'id': B, 'computerDnsName': 'ws-dup01.contoso.local', 'lastSeen': '2024-02-20T05:00:00Z'}]
    reads = Reads([change(A, 'ws-dup01.contoso.local', new=[kb('5034765')]),
                   change(B, 'ws-dup01.contoso.local', new=[kb('5034441')])])
    events, dummy, dummy2 = run(reads, machines=machines, filter="healthStatus ne 'Inactive'")
    assert [(e['defender_tvm']['device_id'], e['meta']['hosts']) for e in events] == [
        (A, 'ws-dup01.contoso.local_%s' % A), (B, 'ws-dup01.contoso.local')]
    assert run.listings == ["healthStatus ne 'Inactive'"]  # listed once, with the inventory's filter
    # named by ID first: the ID names the host, and no list is read
    events, dummy, dummy2 = run(Reads([change(A, 'ws-dup01.contoso.local', new=[kb('5035001')])]), machines=machines,
                                hostnames=['id', 'computerDnsName'])
    assert events[0]['meta']['hosts'] == A and run.listings == []
    # a poll whose changes emit nothing new lists nothing
    seen = [change(B, 'ws-dup01.contoso.local', new=[kb('5035002')])]
    run(Reads(seen, seen), machines=machines)
    assert run.listings == [None]


def test_a_failed_poll_emits_nothing_keeps_the_checkpoint_and_goes_on(run, caplog):
    reads = Reads(TransportError('Reading the vulnerability changes, still throttled after 6 attempts'),
                  [change(A, 'web01', new=[kb('5034765')])])
    events, saved, sleeps = run(reads, interval=5)
    assert len(events) == 1 and sleeps == [5, 5]
    assert reads.since[0] == reads.since[1]  # the failed poll did not move the checkpoint
    assert 'this poll failed, trying again in 5 s' in caplog.text and 'still throttled' in caplog.text


@pytest.mark.parametrize('args,message', [
    ({'interval': 0}, 'interval must be an integer of at least 1'),
    ({'interval': '60'}, 'interval must be an integer'),
    ({'min_cve_addressed': -1}, 'min_cve_addressed must be an integer of at least 0'),
    ({'since': '2024-01-01T00:00:00Z'}, 'more than 14 days back'),
    ({'since': 'yesterday'}, 'since must be an ISO 8601 time'),
    ({'devices': ['web01', '']}, 'devices'),
    ({'intervall': 60}, 'unknown argument intervall'),
    ({'api_url': 'http://insecure.example'}, 'api_url'),
])
def test_bad_arguments_fail_clearly_before_any_call(run, monkeypatch, args, message):
    monkeypatch.setattr(source, '_now', lambda: NOW)
    reads = Reads()
    monkeypatch.setattr(source, 'read_changes', reads)
    with pytest.raises((ValueError, ConfigurationError), match=message):
        asyncio.run(source.main(ListQueue(), dict(CREDENTIALS, **args)))
    assert reads.since == []


def test_the_checkpoint_is_written_atomically_and_a_foreign_file_is_refused(tmp_path):
    path = tmp_path / 'deep' / 'state.json'
    checkpoint = source.Checkpoint(str(path), NOW)
    checkpoint.emitted['x'] = '2024-02-20T06:00:00Z'
    checkpoint.advance(NOW)
    checkpoint.save()
    assert json.loads(path.read_text()) == {'version': 1, 'start': '2024-02-20T07:00:00Z',
                                            'reached': '2024-02-20T07:00:00Z', 'emitted': {'x': '2024-02-20T06:00:00Z'}}
    assert [p.name for p in path.parent.iterdir()] == ['state.json']  # no temporary file left
    # keys older than the next poll can see are dropped; a poll a day later reads the overlap
    checkpoint.advance(NOW + datetime.timedelta(days=1))
    assert checkpoint.emitted == {}
    assert checkpoint.read_from(NOW + datetime.timedelta(days=1)) == NOW + datetime.timedelta(hours=12)
    # a checkpoint older than Defender keeps resumes from 14 days back
    later = NOW + datetime.timedelta(days=30)
    assert checkpoint.read_from(later) == later - datetime.timedelta(days=14) + datetime.timedelta(minutes=5)
    path.write_text('{"something": "else"}')
    with pytest.raises(ValueError, match='not a checkpoint of this source'):
        source.Checkpoint(str(path), NOW)


def test_the_default_state_file_is_per_tenant_app_and_api(monkeypatch, tmp_path):
    monkeypatch.setenv('XDG_STATE_HOME', str(tmp_path))
    one = source.Arguments(CREDENTIALS, environ={}, now=NOW).state_file
    other = source.Arguments(dict(CREDENTIALS, client_id='bbbbbbbb-bbbb-cccc-dddd-eeeeeeeeeeee'), environ={}, now=NOW).state_file
    assert one.startswith(str(tmp_path / 'defender_tvm' / 'missing_kbs-')) and one != other


def test_the_source_is_declared_documented_and_its_options_are_its_arguments():
    import ast
    import os

    import yaml
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    with open(os.path.join(root, 'meta', 'extensions.yml')) as handle:
        assert {'args': {'ext_dir': 'eda/plugins/event_source'}} in yaml.safe_load(handle)['extensions']
    with open(source.__file__) as handle:
        tree = ast.parse(handle.read())
    blocks = dict((node.targets[0].id, node.value.value) for node in tree.body
                  if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', None) in ('DOCUMENTATION', 'EXAMPLES'))
    documentation, examples = yaml.safe_load(blocks['DOCUMENTATION']), yaml.safe_load(blocks['EXAMPLES'])
    assert set(source.SOURCE_OPTIONS) <= set(documentation['options'])
    assert examples[0]['sources'][0]['defender.tvm.missing_kbs']['interval'] == 3600
