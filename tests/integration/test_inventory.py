# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The defender.tvm.devices inventory plugin through real ansible-inventory and ansible-playbook -i,
against the emulator: hosts, variables, groups, paging, filters, names, cache, unsafe values,
permissions and secrets."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import math
import os
import re

import pytest

from ansible.parsing.vault import VaultLib, VaultSecret

pytestmark = pytest.mark.representative

PLUGIN = 'defender.tvm.devices'
JWT = re.compile(r'eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}')
BY_KB = {'key': "mde_missing_kbs | map('lower') | list", 'prefix': 'missing'}


def plain(value):
    """A value of ansible-inventory's JSON without the unsafe markers some versions print."""
    if isinstance(value, dict):
        if set(value) == {'__ansible_unsafe'}:
            return value['__ansible_unsafe']
        return dict((k, plain(v)) for k, v in value.items())
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def listed(ansible, config, env=None, **options):
    run = ansible.inventory(dict({'plugin': PLUGIN}, **config), env=env, **options)
    assert run.returncode == 0 and run.inventory is not None, run.output
    return run, plain(run.inventory['_meta']['hostvars']), run.inventory


def machines(emulator):
    return emulator.data['machines']


def group_hosts(inventory, group):
    return sorted(inventory.get(group, {}).get('hosts', []))


def test_every_device_is_a_host_with_its_defender_facts_and_missing_kbs(ansible, emulator):
    run, hostvars, inventory = listed(ansible, {'missing_kbs': True, 'keyed_groups': [BY_KB]})
    truth = emulator.export_truth()
    by_id = dict((v['mde_device_id'], (host, v)) for host, v in hostvars.items())
    assert sorted(by_id) == sorted(machines(emulator))  # every device, once
    for mid, machine in machines(emulator).items():
        host, variables = by_id[mid]
        assert host in (machine['computerDnsName'], mid) or host.startswith('%s_' % machine['computerDnsName'])
        assert variables['kb_patching_device_name'] == mid
        expected = {'mde_device_id': mid, 'mde_computer_dns_name': machine['computerDnsName'],
                    'mde_os_platform': machine['osPlatform'], 'mde_os_version': machine['version'],
                    'mde_health_status': machine['healthStatus'], 'mde_exposure_level': machine['exposureLevel'],
                    'mde_risk_score': machine['riskScore'], 'mde_machine_tags': machine['machineTags'] or [],
                    'mde_rbac_group_name': machine['rbacGroupName'], 'mde_last_seen': machine['lastSeen'],
                    'mde_last_ip_address': machine['lastIpAddress']}
        assert dict((k, variables[k]) for k in expected) == expected
        kbs = truth.get(mid, {})
        assert sorted(variables['mde_missing_kbs']) == sorted('KB' + kb for kb in kbs)
        assert variables['mde_missing_kb_count'] == len(kbs)
        counts = [kbs[name[2:]] for name in variables['mde_missing_kbs']]
        assert counts == sorted(counts, reverse=True)  # the KB that fixes most findings first
    # keyed groups by KB: exactly the devices that miss it
    missed = {}
    for mid, kbs in truth.items():
        for kb in kbs:
            missed.setdefault('missing_kb' + kb, []).append(by_id[mid][0])
    for group, hosts in missed.items():
        assert group_hosts(inventory, group) == sorted(hosts), group
    # one device listing, one export read, one token: nothing per device
    stats = emulator.stats()
    assert stats['api_by_route']['machine_list'] == 1 and stats['api_by_route']['software_vulnerabilities_by_machine'] == 1
    assert stats['api_requests'] == 2 and stats['token_requests'] == 1


def test_the_device_list_is_paged_to_the_end(ansible, emulator):
    emulator.configure(page_size=7)
    dummy, hostvars, dummy2 = listed(ansible, {})
    assert sorted(v['mde_device_id'] for v in hostvars.values()) == sorted(machines(emulator))
    pages = emulator.stats()['api_by_route']['machine_list']
    assert pages == int(math.ceil(len(machines(emulator)) / 7.0)) > 2
    assert all('mde_missing_kbs' not in v for v in hostvars.values())  # missing_kbs is off by default


def test_the_filter_is_passed_as_given(ansible, emulator):
    odata = "osPlatform eq 'Windows11' and healthStatus eq 'Active'"
    dummy, hostvars, dummy2 = listed(ansible, {'filter': odata})
    expected = sorted(mid for mid, m in machines(emulator).items()
                      if m['osPlatform'] == 'Windows11' and m['healthStatus'] == 'Active')
    assert expected and sorted(v['mde_device_id'] for v in hostvars.values()) == expected
    (request,) = [r for r in emulator.stats()['requests'] if r['route'] == 'machine_list']
    assert '$filter=osPlatform%20eq%20%27Windows11%27%20and%20healthStatus%20eq%20%27Active%27' in request['raw_path'] \
        or "$filter=osPlatform%20eq%20'Windows11'%20and%20healthStatus%20eq%20'Active'" in request['raw_path']


def test_no_matching_device_is_an_empty_inventory(ansible, emulator):
    run, hostvars, inventory = listed(ansible, {'filter': "computerDnsName eq 'no-such-device.example'"})
    assert hostvars == {} and group_hosts(inventory, 'ungrouped') == []
    assert emulator.stats()['status_counts'].get('404') == 1  # Defender's answer for "no device"
    assert 'WARNING' not in run.stderr


def test_a_bad_filter_fails_clearly(ansible, emulator):
    run = ansible.inventory({'plugin': PLUGIN, 'filter': "osPlatform eq"})
    assert 'Check the filter syntax' in run.output and '400' in run.output, run.output


def test_hostnames_fall_back_in_order_and_duplicates_are_kept_apart(ansible, emulator):
    run, hostvars, dummy = listed(ansible, {'hostnames': ['computerDnsName', 'id']})
    names = {}
    for mid, machine in machines(emulator).items():
        names.setdefault(machine['computerDnsName'] or mid, []).append(machine)
    unnamed = [mid for mid, m in machines(emulator).items() if not m['computerDnsName']]
    assert unnamed, 'the emulator must have a device without a computer name'
    for mid in unnamed:
        assert hostvars[mid]['mde_device_id'] == mid  # named by its ID
    twins = dict((name, group) for name, group in names.items() if len(group) > 1)
    assert twins, 'the emulator must have two devices with one computer name'
    for name, group in twins.items():
        group = sorted(group, key=lambda m: m['lastSeen'], reverse=True)
        assert hostvars[name]['mde_device_id'] == group[0]['id']  # the one seen last keeps the name
        for other in group[1:]:
            assert hostvars['%s_%s' % (name, other['id'])]['mde_device_id'] == other['id']
        # each host names its own device by ID for the role, which a shared name cannot do
        hosts = [name] + ['%s_%s' % (name, other['id']) for other in group[1:]]
        assert [hostvars[host]['kb_patching_device_name'] for host in hosts] == [m['id'] for m in group]
        assert re.search(r'\[WARNING\].*%d devices are named %s' % (len(group), re.escape(name)), run.stderr)
    assert len(hostvars) == len(machines(emulator))
    # by last IP address first: every device has one
    dummy, by_ip, dummy2 = listed(ansible, {'hostnames': ['lastIpAddress', 'id']})
    assert sorted(by_ip) == sorted(set(m['lastIpAddress'] for m in machines(emulator).values())) or len(by_ip) == len(
        machines(emulator))


def test_constructed_compose_groups_and_a_playbook_on_a_kb_group(ansible, emulator):
    truth = emulator.export_truth()
    kb = max(((kb, mid) for mid, kbs in truth.items() for kb in kbs), key=lambda item: sum(
        1 for kbs in truth.values() if item[0] in kbs))[0]
    config = {'missing_kbs': True, 'keyed_groups': [BY_KB, {'key': 'mde_os_platform', 'prefix': 'os'}],
              'groups': {'needs_patching': 'mde_missing_kb_count > 0'},
              'compose': {'ansible_host': 'mde_last_ip_address', 'ansible_connection': "'local'"}}
    dummy, hostvars, inventory = listed(ansible, config)
    assert all(v['ansible_host'] == v['mde_last_ip_address'] for v in hostvars.values())
    assert group_hosts(inventory, 'needs_patching') == sorted(h for h, v in hostvars.items() if v['mde_missing_kb_count'])
    windows11 = sorted(h for h, v in hostvars.items() if v['mde_os_platform'] == 'Windows11')
    assert windows11 and group_hosts(inventory, 'os_Windows11') == windows11
    # ansible-playbook -i ... -l missing_kbNNNN runs on exactly the hosts that miss it
    inventory_file = str(ansible.tmp_path / 'test.defender_devices.yml')
    playbook = ansible.tmp_path / 'play.yml'
    playbook.write_text(json.dumps([{'hosts': 'all', 'gather_facts': False, 'tasks': [
        {'ansible.builtin.debug': {'msg': 'patch {{ inventory_hostname }}: {{ mde_missing_kbs | join(",") }}'}}]}]))
    run = ansible.playbook(str(playbook), inventory=inventory_file, args=['-l', 'missing_kb' + kb])
    assert run.rc == 0, run
    ran = sorted(set(re.findall(r'^ok: \[([^\]]+)\]', run.output, re.M)))
    assert ran == group_hosts(inventory, 'missing_kb' + kb) and len(ran) == sum(1 for k in truth.values() if kb in k)
    graph = ansible.inventory(dict({'plugin': PLUGIN}, **config), args=('--graph', 'missing_kb' + kb))
    assert graph.returncode == 0 and all(host in graph.stdout for host in ran), graph.output


def test_the_cache_saves_every_call_on_a_second_run(ansible, emulator, tmp_path):
    config = {'missing_kbs': True, 'cache': True, 'cache_plugin': 'ansible.builtin.jsonfile',
              'cache_connection': str(tmp_path / 'cache'), 'cache_timeout': 3600, 'keyed_groups': [BY_KB]}
    dummy, first, first_inventory = listed(ansible, config)
    assert emulator.stats()['api_requests'] == 2 and os.listdir(str(tmp_path / 'cache'))
    emulator.reset()
    dummy, second, second_inventory = listed(ansible, config)
    assert second == first and second_inventory == first_inventory
    stats = emulator.stats()
    assert stats['api_requests'] == 0 and stats['token_requests'] == 0  # no call at all
    # a refresh asks again (ansible-inventory has no --flush-cache before ansible-core 2.17)
    playbook = tmp_path / 'noop.yml'
    playbook.write_text(json.dumps([{'hosts': 'localhost', 'gather_facts': False, 'tasks': [{'ansible.builtin.meta': 'noop'}]}]))
    run = ansible.playbook(str(playbook), inventory=str(ansible.tmp_path / 'test.defender_devices.yml'),
                           args=['--flush-cache'])
    assert run.rc == 0 and emulator.stats()['api_requests'] == 2, run


def test_a_tag_that_looks_like_a_template_is_never_rendered(ansible, emulator, tmp_path):
    tagged = [(mid, m) for mid, m in machines(emulator).items() if any('{{' in t for t in m['machineTags'] or [])]
    assert tagged, 'the emulator must have a device tagged with a template'
    mid, machine = tagged[0]
    inventory_file = str(tmp_path / 'test.defender_devices.yml')
    listed(ansible, {'hostnames': ['id'], 'compose': {'ansible_connection': "'local'"},
                     'keyed_groups': [{'key': 'mde_machine_tags', 'prefix': 'tag'}]})
    playbook = tmp_path / 'play.yml'
    playbook.write_text(json.dumps([{'hosts': mid, 'gather_facts': False, 'tasks': [
        {'ansible.builtin.debug': {'msg': 'tags={{ mde_machine_tags | join("|") }}'}}]}]))
    run = ansible.playbook(str(playbook), inventory=inventory_file)
    assert run.rc == 0, run
    for tag in machine['machineTags']:
        assert tag in run.output  # printed as it is, not rendered
    assert '42' not in re.findall(r'tags=(.*)', run.output)[0]
    assert not os.path.exists('/tmp/defender-tvm-pwned')


def test_the_permission_error_names_the_permission(ansible, emulator):
    run = ansible.inventory({'plugin': PLUGIN}, env=ansible.credentials('noperm'))
    assert 'Machine.Read.All' in run.output and '403' in run.output, run.output
    assert 'Unable to parse' in run.output or run.returncode != 0


def test_a_vault_secret_in_the_inventory_file_works_and_no_secret_shows(ansible, emulator, tmp_path):
    secret = emulator.clients['secret']['client_secret']
    password = 'inventory-vault-password'
    (tmp_path / 'vault-pass').write_text(password)
    vault = VaultLib([('default', VaultSecret(password.encode('utf-8')))])
    encrypted = vault.encrypt(secret).decode('utf-8')
    env = ansible.credentials()
    del env['MDE_CLIENT_SECRET']
    config = "plugin: %s\nclient_secret: !vault |\n%s\n" % (PLUGIN, '\n'.join('  ' + line for line in encrypted.splitlines()))
    run = ansible.inventory(config, env=env, args=('--list', '--vault-password-file', str(tmp_path / 'vault-pass')),
                            verbosity=4)
    assert run.returncode == 0 and run.inventory['_meta']['hostvars'], run.output
    assert emulator.stats()['token_requests_by_client'] == {'secret': 1}
    assert secret not in run.output and not JWT.search(run.output)
    # and as a template of a variable a lookup reads
    env['DEFENDER_TVM_TEST_SECRET'] = secret
    config = "plugin: %s\nclient_secret: \"{{ lookup('ansible.builtin.env', 'DEFENDER_TVM_TEST_SECRET') }}\"\n" % PLUGIN
    run = ansible.inventory(config, env=env, verbosity=4)
    assert run.returncode == 0 and run.inventory['_meta']['hostvars'], run.output
    assert secret not in run.output and not JWT.search(run.output)


def test_a_file_of_another_name_is_not_read(ansible, emulator):
    run = ansible.inventory({'plugin': PLUGIN}, name='fleet.yml', verbosity=3)
    assert emulator.stats()['api_requests'] == 0
    assert 'defender_devices.yml' in run.output  # -vvv says which name the plugin wants


def documented_example(index=0):
    """The plugin's EXAMPLES (the first, or the text after the ``index``-th ``# ---``)."""
    import ast
    with open(os.path.join(os.path.dirname(__file__), '..', '..', 'plugins', 'inventory', 'devices.py')) as handle:
        tree = ast.parse(handle.read())
    examples = next(node.value.value for node in tree.body if isinstance(node, ast.Assign)
                    and getattr(node.targets[0], 'id', None) == 'EXAMPLES')
    return examples.split('\n# ---', 1)[index]


def listing_hosts(run):
    """The hosts ``ansible-playbook --list-hosts`` printed for its plays (``hosts (N):`` and N lines each),
    localhost (the compliance playbook's plays on the controller) left out."""
    hosts, lines = set(), run.output.splitlines()
    for index, line in enumerate(lines):
        match = re.match(r'^\s*hosts \((\d+)\):', line)
        if match:
            hosts.update(entry.strip() for entry in lines[index + 1:index + 1 + int(match.group(1))])
    return sorted(hosts - {'localhost'})


def test_the_documented_example_works_as_pasted(ansible, emulator):
    run = ansible.inventory(documented_example(), name='fleet.defender_devices.yml')
    assert run.returncode == 0 and run.inventory, run.output
    hostvars = plain(run.inventory['_meta']['hostvars'])
    wanted = ('Windows11', 'WindowsServer2022')
    assert sorted(v['mde_device_id'] for v in hostvars.values()) == sorted(
        mid for mid, m in machines(emulator).items() if m['osPlatform'] in wanted)
    groups = set(run.inventory)
    assert {'os_Windows11', 'os_WindowsServer2022', 'needs_patching', 'windows'} <= groups
    assert any(g.startswith('exposure_') for g in groups) and all(v['ansible_host'] == v['mde_last_ip_address'] for v in hostvars.values())
    assert group_hosts(run.inventory, 'windows') == sorted(hostvars)  # where defender.tvm.patch and compliance look
    # missing_kb<nr>: exactly the hosts whose devices miss it, all of these groups in needs_patching
    truth = emulator.export_truth()
    host_of = dict((v['mde_device_id'], host) for host, v in hostvars.items())
    missed = {}
    for mid, kbs in truth.items():
        for kb in kbs:
            if mid in host_of:
                missed.setdefault('missing_kb' + kb, []).append(host_of[mid])
    assert missed and sorted(g for g in groups if g.startswith('missing_kb')) == sorted(missed)
    for group, hosts in missed.items():
        assert group_hosts(run.inventory, group) == sorted(hosts), group
    assert sorted(run.inventory['needs_patching']['children']) == sorted(missed)


def test_the_patch_playbook_runs_on_the_documented_examples_kb_group(ansible, emulator):
    """As the example's comment says: defender.tvm.patch -l missing_kb<nr> runs on exactly the hosts missing
    the KB (its play is on the group windows), and -e kb_patching_hosts=missing_kb<nr> does without that
    group; the hosts are listed (--list-hosts), not patched."""
    run = ansible.inventory(documented_example(), name='fleet.defender_devices.yml')
    assert run.returncode == 0, run.output
    kb_groups = sorted((g for g in run.inventory if g.startswith('missing_kb')), key=lambda g: -len(group_hosts(run.inventory, g)))
    group = kb_groups[0]
    expected = group_hosts(run.inventory, group)
    assert len(expected) > 1
    inventory_file = str(ansible.tmp_path / 'fleet.defender_devices.yml')
    for args in (['-l', group], ['-e', 'kb_patching_hosts=%s' % group]):
        listing = ansible.playbook('defender.tvm.patch', inventory=inventory_file, args=['--list-hosts'] + args,
                                   tag='list-hosts')
        assert listing.rc == 0 and listing_hosts(listing) == expected, listing
    # the compliance playbook (a play on the controller) reports on every host that misses a KB
    # (needs_patching holds the missing_kb groups)
    compliance = ansible.playbook('defender.tvm.compliance', inventory=inventory_file, tag='needs',
                                  extra_vars={'kb_patching_hosts': 'needs_patching', 'kb_patching_strategy': 'export'},
                                  report_dir=str(ansible.tmp_path / 'needs-reports'))
    needs = sorted(set(host for g in kb_groups for host in group_hosts(run.inventory, g)))
    assert compliance.report is not None, compliance
    assert sorted(compliance.report['hosts']) == needs
