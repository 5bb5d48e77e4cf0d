# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: devices
short_description: Microsoft Defender for Endpoint's devices as inventory, grouped by the KBs they miss
version_added: 2.0.0
description:
  - Lists the devices Defender knows (C(GET /api/machines), paged to the end) as inventory hosts
    with their Defender facts as C(mde_*) host variables, and with O(missing_kbs=true) the KBs each
    one misses, from one read of the vulnerability export (as M(defender.tvm.device_missing_kbs_info)
    reads it), so the API calls do not grow with the devices beyond paging.
  - With O(missing_kb_groups=true) each host is in a group per KB its device misses (C(missing_kb5034122)),
    all of them in the group O(missing_kb_parent_group) (C(needs_patching)). Group them further with the
    C(constructed) options.
  - C(defender.tvm.patch) and C(defender.tvm.compliance) run on the hosts of C(kb_patching_hosts), by default
    the group C(windows). Put the Windows devices in it (see EXAMPLES), and
    C(defender.tvm.patch -l missing_kb5034122) patches the hosts missing KB5034122; or name the group
    itself, C(-e kb_patching_hosts=missing_kb5034122).
  - A C(compose) value or C(keyed_groups) C(key) that is only the name of a host variable, such as
    V(mde_os_platform), is read without a template on ansible-core 2.19 and later, with the result the
    template would give. Each other one, and each C(groups) condition, is a template evaluated for each
    host, as in C(ansible.builtin.constructed), which costs about 0.35 ms per host and expression on
    ansible-core 2.19 (35 s per 100,000 hosts).
  - Every host also gets C(kb_patching_device_name) set to its device ID, so the
    C(defender.tvm.kb_patching) role matches it to its device with no name lookup.
  - Every value that comes from Defender is marked unsafe, so that a device name or tag that looks
    like a template (C({{ ... }})) is never rendered. C(ansible-inventory --list) then shows such
    values wrapped in an object with the key C(__ansible_unsafe) on some ansible-core versions;
    that is expected.
  - The inventory file's name must end with C(defender_devices.yml) or C(defender_devices.yaml).
  - Requires the application permission C(Machine.Read.All) of the C(WindowsDefenderATP) API, and
    C(Vulnerability.Read.All) with O(missing_kbs=true).
author:
  - defender.tvm maintainers (@defender-tvm)
extends_documentation_fragment:
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
  - defender.tvm.connection
  - defender.tvm.connection.plugins
options:
  plugin:
    description: The name of this plugin; it must be V(defender.tvm.devices) for it to read the file.
    required: true
    type: str
    choices: [defender.tvm.devices]
  filter:
    description:
      - An OData C($filter) for C(GET /api/machines), passed as given, for example
        V(osPlatform eq 'Windows11'), V(healthStatus eq 'Active'), V(exposureLevel eq 'High'),
        V(riskScore eq 'High'), V(machineTags/any(tag:tag eq 'Prod')), V(rbacGroupId eq 201) or
        V(lastSeen gt 2024-02-01Z). Defender answers 404 when no device matches, which is an empty inventory.
    type: str
  hostnames:
    description:
      - The device fields to name each host by, in order; the first one the device has wins.
      - Two devices with one name (a device onboarded again keeps its name under a new ID) are both
        kept, the one seen last under that name and the other under C(<name>_<device ID>), with a
        warning. Use V(id) first, with O(compose) setting C(ansible_host), to name every device uniquely.
    type: list
    elements: str
    choices: [computerDnsName, id, lastIpAddress, lastExternalIpAddress, aadDeviceId]
    default: [computerDnsName, id]
  missing_kbs:
    description:
      - Read the vulnerability export as well (one read for all devices), to give each host
        C(mde_missing_kbs) and C(mde_missing_kb_count). Needs C(Vulnerability.Read.All).
    type: bool
    default: false
  missing_kb_groups:
    description:
      - With O(missing_kbs=true), add each host to one group per KB its device misses, named C(missing_)
        and the KB in lower case (C(missing_kb5034122)), and make each of these groups a child of
        O(missing_kb_parent_group). The groups come from the export's KBs directly, with no template,
        so they cost next to nothing at any fleet size.
      - They are the groups of a C(keyed_groups) entry with the C(key) V(mde_missing_kbs | map('lower') | list),
        the C(prefix) V(missing) and the C(parent_group) O(missing_kb_parent_group), which is a template
        that costs about 0.7 ms per host on ansible-core 2.19 (70 s per 100,000 hosts).
      - Needs O(missing_kbs=true).
    type: bool
    default: false
  missing_kb_parent_group:
    description:
      - With O(missing_kb_groups=true), the group the C(missing_kb...) groups are children of, so that
        it holds every host that misses a KB, as C(groups) with C(mde_missing_kb_count > 0) would
        (without a template).
      - An empty value makes no parent group.
    type: str
    default: needs_patching
  export_source:
    description:
      - With O(missing_kbs=true), read the export's V(json) pages or its V(files) (Microsoft
        recommends the files above about 100,000 devices); see M(defender.tvm.device_missing_kbs_info).
    type: str
    choices: [json, files]
    default: json
notes:
  - Host variables (all from Defender, all unsafe) - C(mde_device_id), C(mde_computer_dns_name),
    C(mde_os_platform), C(mde_os_version), C(mde_health_status), C(mde_exposure_level),
    C(mde_risk_score), C(mde_machine_tags), C(mde_rbac_group_name), C(mde_last_seen),
    C(mde_last_ip_address); with O(missing_kbs=true) also C(mde_missing_kbs) (C(KB...) names, the
    KB that fixes most of the device's findings first) and C(mde_missing_kb_count).
  - Option values in the inventory file may be templates, for example a secret from a
    vault-encrypted variable or a lookup; they are rendered before any call.
  - With O(cache=true) and a persistent O(cache_plugin) such as V(ansible.builtin.jsonfile), a run
    within O(cache_timeout) of the last one makes no API call. The default cache plugin,
    V(memory), keeps nothing between runs. The cache key is made of the plugin's name and the
    inventory file's path, so change the file's name when you change its options.
seealso:
  - module: defender.tvm.device_missing_kbs_info
    description: The same export read as a module.
  - name: List machines API
    link: https://learn.microsoft.com/en-us/defender-endpoint/api/get-machines
    description: The Defender API this plugin lists devices with.
'''

EXAMPLES = r'''
# fleet.defender_devices.yml - credentials from MDE_* / AZURE_* environment variables
plugin: defender.tvm.devices
filter: "osPlatform eq 'Windows11' or osPlatform eq 'WindowsServer2022'"
missing_kbs: true
# missing_kb5034122, ... (a group per KB), all in the group needs_patching
missing_kb_groups: true
groups:
  # every host: the filter lists Windows devices only. windows is the group defender.tvm.patch
  # and defender.tvm.compliance run on (kb_patching_hosts, default windows).
  windows: true
keyed_groups:
  # os_Windows11, exposure_High, risk_Medium, tag_Prod ... (a key that is only a variable's name
  # needs no template on ansible-core 2.19+: fast at any fleet size)
  - key: mde_os_platform
    prefix: os
  - key: mde_exposure_level
    prefix: exposure
  - key: mde_risk_score
    prefix: risk
  - key: mde_machine_tags
    prefix: tag
compose:
  ansible_host: mde_last_ip_address

# Then: ansible-playbook -i fleet.defender_devices.yml defender.tvm.patch -l missing_kb5034122
# (the play runs on windows, limited to the hosts missing KB5034122), or, with no windows group:
#       ansible-playbook -i fleet.defender_devices.yml defender.tvm.patch -e kb_patching_hosts=missing_kb5034122

# ---
# servers.defender_devices.yml - the app's secret vault-encrypted in the file
# (ansible-vault encrypt_string --name client_secret), hosts named by device ID, and the answer
# cached for an hour between runs (run with --ask-vault-pass or --vault-password-file)
# plugin: defender.tvm.devices
# tenant_id: 00000000-0000-0000-0000-000000000000
# client_id: 11111111-1111-1111-1111-111111111111
# client_secret: !vault |
#   $ANSIBLE_VAULT;1.1;AES256
#   62313365396662343061393464336163383764373764613633653634306231386433626436623361
#   ...
# filter: "rbacGroupId eq 201 and healthStatus eq 'Active'"
# hostnames: [id]
# compose:
#   ansible_host: mde_computer_dns_name
# cache: true
# cache_plugin: ansible.builtin.jsonfile
# cache_connection: ~/.cache/defender_tvm_inventory
# cache_timeout: 3600
#
# A template works as well, e.g. client_secret: "{{ lookup('ansible.builtin.env', 'MDE_SECRET') }}".
'''

import copy
import keyword
import re

from ansible.errors import AnsibleParserError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.unsafe_proxy import wrap_var

try:  # ansible-core 2.19 and later (data tagging): the tags a value carries, and where it came from.
    # AnsibleTagHelper and Origin are ansible-core internals (no public API tells a value's tags): without
    # them, every constructed entry is a template as before, and the unit tests say so (they check that
    # a variable's name is read without one on 2.19+, and that the result is the template's).
    from ansible.template import is_trusted_as_template
    from ansible.module_utils._internal._datatag import AnsibleTagHelper
    from ansible._internal._datatag._tags import Origin
    ORIGIN_ONLY = frozenset((Origin,))
except ImportError:  # before 2.19 a value's rendering depends on more (unsafe, jinja2_native, literal_eval)
    ORIGIN_ONLY = None

from ansible_collections.defender.tvm.plugins.module_utils._devices import host_names, list_devices
from ansible_collections.defender.tvm.plugins.module_utils._export import read_export
from ansible_collections.defender.tvm.plugins.module_utils._options import OPTIONS, OptionAdapter
from ansible_collections.defender.tvm.plugins.plugin_utils._defender_plugin import defender_client

SUFFIXES = ('defender_devices.yml', 'defender_devices.yaml')
# host variable -> the Machine entity's field it comes from
HOST_VARIABLES = (
    ('mde_device_id', 'id'), ('mde_computer_dns_name', 'computerDnsName'), ('mde_os_platform', 'osPlatform'),
    ('mde_os_version', 'version'), ('mde_health_status', 'healthStatus'), ('mde_exposure_level', 'exposureLevel'),
    ('mde_risk_score', 'riskScore'), ('mde_machine_tags', 'machineTags'), ('mde_rbac_group_name', 'rbacGroupName'),
    ('mde_last_seen', 'lastSeen'), ('mde_last_ip_address', 'lastIpAddress'),
)
MISSING_KB_GROUP_PREFIX = 'missing_'
# A constructed expression that is one variable's name: Jinja's literals and Python's keywords are not names
_VARIABLE_NAME = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*\Z')
_NOT_VARIABLE_NAMES = frozenset(keyword.kwlist) | frozenset(('true', 'false', 'none'))
_NEEDS_TEMPLATE = object()


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    """Defender's devices as hosts; the devices (and their KBs) are fetched once, then cached."""

    NAME = 'defender.tvm.devices'
    _variables_without_template = False  # set by _populate: _compose reads a variable's name without Jinja

    def verify_file(self, path):
        if not super(InventoryModule, self).verify_file(path):
            return False
        if path.endswith(SUFFIXES):
            return True
        self.display.vvv('%s: skipping %s, whose name does not end with %s' % (self.NAME, path, ' or '.join(SUFFIXES)))
        return False

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache)
        given = self._read_config_data(path)
        self._render_templates(given)
        self._check_options()

        cache_key = self.get_cache_key(path)
        use_cache = self.get_option('cache') and cache
        update_cache = self.get_option('cache') and not cache
        devices = None
        if use_cache:
            try:
                devices = self._cache[cache_key]
            except KeyError:
                update_cache = True  # a miss or an expired entry
        if devices is None:
            devices = self._fetch(given)
        if update_cache:  # not after a cache hit: rewriting it would restart its timeout
            self._cache[cache_key] = devices
        self._populate(devices)

    def _render_templates(self, given):
        """Render the connection options given as templates (a vault variable, a lookup), as the
        inventory file's own values; a template never comes from Defender."""
        for name in OPTIONS:
            value = given.get(name)
            if isinstance(value, str) and self.templar.is_template(value):
                self.set_option(name, self.templar.template(value))
            elif value is not None and not isinstance(value, (bool, int, float, list, dict)):
                self.set_option(name, to_text(value))  # e.g. a !vault value: its plain text

    def _check_options(self):
        """Errors in the options, before any call."""
        if self.get_option('missing_kb_groups') and not self.get_option('missing_kbs'):
            raise AnsibleParserError('%s: missing_kb_groups needs missing_kbs: true (the KBs come from the '
                                     'vulnerability export it reads)' % self.NAME)

    def _fetch(self, given):
        """The devices as plain data (cacheable): each Machine entity's host variables, and with
        missing_kbs their KBs."""
        adapter = OptionAdapter.from_plugin(self, set(given) - {'plugin'}, set())
        with defender_client(adapter, self.display.warning, 'The %s inventory plugin' % self.NAME) as client:
            machines = list_devices(client, self.get_option('filter'))
            kbs = None
            if self.get_option('missing_kbs'):
                export = read_export(client, self.get_option('export_source'))
                kbs = dict((d['device_id'], [k['kb'] for k in d['missing_kbs']]) for d in export['devices'])
        devices = []
        for machine in machines:
            if not isinstance(machine, dict) or not machine.get('id'):
                raise AnsibleParserError('%s: Defender listed a device without an ID' % self.NAME)
            variables = dict((name, machine.get(field)) for name, field in HOST_VARIABLES)
            variables['mde_machine_tags'] = list(variables['mde_machine_tags'] or [])
            if kbs is not None:
                missing = kbs.get(machine['id'].lower(), [])
                variables.update(mde_missing_kbs=missing, mde_missing_kb_count=len(missing))
            devices.append({'names': [machine.get(field) for field in self.get_option('hostnames')],
                            'variables': variables})
        return devices

    def _populate(self, devices):
        strict = self.get_option('strict')
        compose, groups, keyed_groups = self.get_option('compose'), self.get_option('groups'), self.get_option('keyed_groups')
        kb_groups = {} if self.get_option('missing_kb_groups') else None  # KB -> its group, made when first met
        self._variables_without_template = ORIGIN_ONLY is not None and not self.get_option('use_extra_vars')
        try:
            for name, variables in self._host_names(devices):
                host = self.inventory.add_host(name)
                variables = dict(variables, kb_patching_device_name=variables['mde_device_id'])
                for key, value in variables.items():
                    self.inventory.set_variable(host, key, _unsafe(value))
                if kb_groups is not None:
                    self._add_host_to_missing_kb_groups(host, variables.get('mde_missing_kbs') or [], kb_groups)
                variables = self.inventory.get_host(host).get_vars()
                self._set_composite_vars(compose, variables, host, strict=strict)
                self._add_host_to_composed_groups(groups, variables, host, strict=strict)
                self._add_host_to_keyed_groups(keyed_groups, variables, host, strict=strict)
        finally:
            self._variables_without_template = False

    def _add_host_to_missing_kb_groups(self, host, kbs, kb_groups):
        """missing_kb_groups: the host in ``missing_<kb in lower case>`` for each of its KBs, each such group a
        child of missing_kb_parent_group, named as constructed would name them (sanitised)."""
        for kb in kbs:
            group = kb_groups.get(kb)
            if group is None:
                group = kb_groups[kb] = self.inventory.add_group(
                    self._sanitize_group_name('%s%s' % (MISSING_KB_GROUP_PREFIX, to_text(kb).lower())))
                parent = self.get_option('missing_kb_parent_group')
                if parent:
                    parent = self.inventory.add_group(self._sanitize_group_name(parent))
                    self.inventory.add_child(parent, group)
            self.inventory.add_child(group, host)

    def _compose(self, template, variables, *args, **kwargs):
        """Constructable's ``_compose`` (every compose value and keyed_groups key goes through it), without
        a template when the expression is only the name of a host variable whose value the template would
        return as it is: compiling a template costs about 0.35 ms on ansible-core 2.19, and constructed
        compiles each entry again for every host."""
        value = _NEEDS_TEMPLATE
        if self._variables_without_template:
            value = _variable_as_it_is(template, variables)
        if value is _NEEDS_TEMPLATE:
            return super(InventoryModule, self)._compose(template, variables, *args, **kwargs)
        # as Constructable's _compose leaves it: a templated parent_group is rendered with this host's variables
        self.templar.available_variables = variables
        return value

    def _host_names(self, devices):
        """(host name, variables) per device, by the collection's one naming rule (``host_names``:
        the event source names hosts by it too); a name several devices have is warned about."""
        named, warnings = host_names((d['names'], d['variables']['mde_device_id'], d['variables'].get('mde_last_seen'),
                                      d['variables']) for d in devices)
        for warning in warnings:
            self.display.warning('%s: %s' % (self.NAME, warning))
        return named


def _variable_as_it_is(template, variables):
    """What ansible-core 2.19+ evaluates the expression ``template`` to, when that takes no template:
    the expression is trusted (else it is an error) and only a variable's name, and the variable's
    value is one a template returns as it is; ``_NEEDS_TEMPLATE`` otherwise."""
    match = _VARIABLE_NAME.match(template) if isinstance(template, str) else None
    if match is None or match.group(1) in _NOT_VARIABLE_NAMES or not is_trusted_as_template(template):
        return _NEEDS_TEMPLATE
    value = variables.get(match.group(1), _NEEDS_TEMPLATE)
    if _as_it_is(value):
        return value
    if isinstance(value, list) and AnsibleTagHelper.tag_types(value) == ORIGIN_ONLY and all(_as_it_is(item) for item in value):
        return copy.copy(value)  # a template returns a copy, with the list's tags
    return _NEEDS_TEMPLATE


def _as_it_is(value):
    """Whether a template returns this value itself: None, a boolean, or a string or number whose only tag
    is where it came from (Origin: ansible-core tags every inventory variable so), so that it is neither
    trusted as a template nor deprecated, and the template adds no Origin of its own."""
    if value is None or isinstance(value, bool):
        return True
    return isinstance(value, (str, int, float)) and AnsibleTagHelper.tag_types(value) == ORIGIN_ONLY


def _unsafe(value):
    """``wrap_var(value)``: never rendered as a template. On ansible-core 2.19 and later wrap_var strips the
    trust a value could carry, and a value of a plain type carries no tag (tags live on subclasses): it is
    returned as it is, without wrap_var's look for tags (100,000 hosts have 1.4 million values)."""
    if ORIGIN_ONLY is not None and (value is None or value.__class__ in (str, int)):  # exactly: a subclass may carry tags
        return value
    return wrap_var(value)
