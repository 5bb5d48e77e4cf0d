# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""SIMULATION of ansible.windows.win_updates, for the defender.tvm integration tests only.

This is NOT ansible.windows. It stands in for ansible.windows.win_updates when
tests/integration/collections is first on ANSIBLE_COLLECTIONS_PATH, and simulates each test host's
Windows Update agent from inventory variables (see roles/kb_patching/CONTRACT.md):

    sim_windows_update:            the agent: offered updates, installed KBs, pending reboot
    sim_windows_update_state_dir:  where <inventory_hostname>.json (the agent's state) and
                                   <inventory_hostname>.calls.jsonl (the arguments received) live
    sim_lose_connection_on_reboot: the first reboot drops the connection once (unreachable)

The behaviour follows ansible.windows 3.3.0: the filtering and the install of one round follow
win_updates.ps1 (Install-WindowsUpdate), the rounds, reboots and the result follow the action
plugin (ActionModule.run and _run_sync). The pure logic is `simulate()`; `ActionModule` only reads
the variables, keeps the state file and records the call.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import os
import re
from collections.abc import Mapping

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.validation import check_type_bool, check_type_int
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()

ACTION = 'ansible.windows.win_updates'

# The real module's options (win_updates.py DOCUMENTATION, win_updates.ps1 $spec) without the internal
# _operation/_operation_options: the real action plugin sets those itself and rejects them from a task.
ARGUMENT_SPEC = {
    'accept_list': {'type': 'list', 'elements': 'str'},
    'category_names': {'type': 'list', 'elements': 'str', 'default': ['CriticalUpdates', 'SecurityUpdates', 'UpdateRollups']},
    'log_path': {'type': 'path'},
    'reboot': {'type': 'bool', 'default': False},
    'reboot_timeout': {'type': 'int', 'default': 1200},
    'reject_list': {'type': 'list', 'elements': 'str'},
    'server_selection': {'type': 'str', 'choices': ['default', 'managed_server', 'windows_update'], 'default': 'default'},
    'skip_optional': {'type': 'bool', 'default': False},
    'state': {'type': 'str', 'choices': ['installed', 'searched', 'downloaded'], 'default': 'installed'},
}
DEFAULT_REBOOT_TIMEOUT = 1200

# win_updates.ps1 still takes the old camel-case names and maps them to WUA's category names. PowerShell's
# `switch -exact` ignores case, hence the lower-case keys.
CAMEL_CASE_CATEGORIES = {
    'criticalupdates': 'Critical Updates',
    'definitionupdates': 'Definition Updates',
    'developerkits': 'Developer Kits',
    'featurepacks': 'Feature Packs',
    'securityupdates': 'Security Updates',
    'servicepacks': 'Service Packs',
    'updaterollups': 'Update Rollups',
}

# WUA OperationResultCode values: the action plugin only tells Succeeded from anything else.
RESULT_SUCCEEDED = 2
RESULT_FAILED = 4

# A few WUA HRESULTs, worded as the real action plugin's _get_hresult_error() table (from wuerror.h) words them.
HRESULT_ERRORS = {
    0x80240016: ('WU_E_INSTALL_NOT_ALLOWED', 'Operation tried to install while another installation was in progress or the system was pending a '
                                             'mandatory restart'),
    0x80240017: ('WU_E_NOT_APPLICABLE', 'Operation was not performed because there are no applicable updates'),
    0x8024001E: ('WU_E_SERVICE_STOP', 'Operation did not complete because the service or system was being shut down'),
    0x80240020: ('WU_E_NO_INTERACTIVE_USER', 'Operation did not complete because there is no logged-on interactive user'),
    0x80240022: ('WU_E_ALL_UPDATES_FAILED', 'Operation failed for all the updates'),
    0x80240034: ('WU_E_DOWNLOAD_FAILED', 'Update failed to download'),
    0x80242016: ('WU_E_UH_POSTREBOOTUNEXPECTEDSTATE', 'The state of the update after its post-reboot operation has completed is unexpected'),
    0x80246007: ('WU_E_DM_NOTDOWNLOADED', 'The update has not been downloaded'),
}

# Messages worded exactly as win_updates.ps1 and the action plugin word them.
MSG_INSTALL_FAILED = 'Failed to install all updates - see updates for more information'
MSG_REBOOT_PENDING = 'A reboot is required before more updates can be installed'
MSG_UPDATE_LOOP = (
    'An update loop was detected, this could be caused by an update being rolled back during a '
    'reboot or the Windows Update API incorrectly reporting a failed update as being successful.'
    'Check the Windows Updates logs on the host to gather more information. Updates in the reboot '
    'loop are: %s'
)
MSG_CONNECTION_LOST = ('SIMULATION: the connection to the host was lost while it rebooted after installing updates '
                       '(sim_lose_connection_on_reboot, happens once per host); the updates were installed and the host rebooted')

# What the inventory may say about one offered update (CONTRACT.md), and about the agent.
UPDATE_KEYS = frozenset(['title', 'kb', 'categories', 'fail', 'reboot_required', 'hidden', 'browse_only', 'downloaded'])
AGENT_KEYS = frozenset(['updates', 'installed_kbs', 'reboot_pending'])

# The real plugin has no bound on its rounds; the simulation stops a runaway loop (a bug here) instead of hanging the tests.
MAX_ROUNDS = 20


class SimulationError(Exception):
    """The test setup is wrong (inventory variables, state file): not something win_updates would report."""


class PatternError(Exception):
    """An accept_list/reject_list entry is not a valid regular expression."""


class ConnectionLost(Exception):
    """The simulated host dropped the connection while rebooting (AnsibleConnectionFailure in the real plugin)."""


# ---------------------------------------------------------------------------------------------------------------
# The agent's state: built from the inventory once, then kept in <state dir>/<host>.json


def initial_state(agent):
    """The state of a host's agent as the inventory variable `sim_windows_update` describes it."""
    if not isinstance(agent, dict):
        raise SimulationError('sim_windows_update must be a dict, got %r' % (agent,))
    unknown = set(agent) - AGENT_KEYS
    if unknown:
        raise SimulationError('sim_windows_update has unknown keys %s (allowed: %s)' % (sorted(unknown), sorted(AGENT_KEYS)))
    updates = agent.get('updates')
    updates = {} if updates is None else updates
    if not isinstance(updates, dict):
        raise SimulationError('sim_windows_update.updates must be a dict keyed by update GUID')
    return {
        'updates': dict((str(guid), _inventory_update(str(guid), update)) for guid, update in updates.items()),
        'installed_kbs': [str(kb) for kb in agent.get('installed_kbs') or []],
        'reboot_pending': bool(agent.get('reboot_pending', False)),
        # Bookkeeping of the simulation itself, for tests to look at.
        'installed_updates': {},
        'reboots': 0,
        'connection_lost_on_reboot': False,
    }


def _inventory_update(guid, update):
    """One offered update from the inventory, checked so that a typo fails loudly instead of changing nothing."""
    if not isinstance(update, dict):
        raise SimulationError('sim_windows_update.updates[%s] must be a dict' % guid)
    unknown = set(update) - UPDATE_KEYS
    if unknown:
        raise SimulationError('sim_windows_update.updates[%s] has unknown keys %s (allowed: %s)' % (guid, sorted(unknown), sorted(UPDATE_KEYS)))
    if not isinstance(update.get('title'), str) or not isinstance(update.get('kb', []), list) or not isinstance(update.get('categories', []), list):
        raise SimulationError('sim_windows_update.updates[%s] needs a title (str), kb (list of digits) and categories (list)' % guid)
    fail = update.get('fail')
    if fail is not None and not (isinstance(fail, dict) and isinstance(fail.get('hresult'), int)):
        raise SimulationError('sim_windows_update.updates[%s].fail must be {hresult: int, msg: str}' % guid)
    return {
        'title': update['title'],
        'kb': [str(kb) for kb in update.get('kb', [])],
        'categories': [str(category) for category in update.get('categories', [])],
        'fail': dict(fail) if fail else None,
        'reboot_required': bool(update.get('reboot_required', False)),
        'hidden': bool(update.get('hidden', False)),
        'browse_only': bool(update.get('browse_only', False)),
        'downloaded': bool(update.get('downloaded', False)),
    }


def offered_updates(state):
    """What a search ('IsInstalled = 0') finds: the updates none of whose KBs is installed."""
    installed = set(state['installed_kbs'])
    return [(guid, update) for guid, update in state['updates'].items() if not installed.intersection(update['kb'])]


# ---------------------------------------------------------------------------------------------------------------
# Arguments


def check_action_options(args):
    """What the real action plugin checks before it runs the module (AnsibleActionFail); returns `reboot`."""
    bad = sorted(set(args) - set(ARGUMENT_SPEC))
    if bad:
        raise AnsibleActionFail('Invalid options for %s: %s' % (ACTION, ','.join(bad)))
    try:
        reboot = check_type_bool(args.get('reboot', False))
    except TypeError as exc:
        raise AnsibleActionFail("Invalid value given for 'reboot': %s." % exc) from exc
    try:
        check_type_int(args.get('reboot_timeout', DEFAULT_REBOOT_TIMEOUT))  # checked, then unused: nothing really reboots
    except TypeError as exc:
        raise AnsibleActionFail("Invalid value given for 'reboot_timeout': %s." % exc) from exc
    return reboot


def module_params(args):
    """The module's own argument validation: (params with defaults, error message or None)."""
    result = ArgumentSpecValidator(ARGUMENT_SPEC).validate(copy.deepcopy(dict(args)))
    if result.error_messages:
        return None, ', '.join(result.error_messages)
    return result.validated_parameters, None


# ---------------------------------------------------------------------------------------------------------------
# One round: win_updates.ps1 Install-WindowsUpdate (search, filter, download, install)


class Round:
    """What one module run reports to the action plugin (its progress messages and its exit result)."""

    def __init__(self, reboot_required):
        self.updates = {}          # GUID -> raw info (title, kb as 'KB<digits>', categories) of every update found
        self.filtered = {}         # GUID -> filtered reasons
        self.selected = []         # GUIDs that passed the filters, in search order
        self.download_results = {}  # GUID -> {'result_code', 'hresult'}
        self.install_results = {}   # GUID -> {'result_code', 'hresult', and 'msg' when the inventory words the failure}
        self.changed = False
        self.reboot_required = reboot_required
        self.failed = False
        self.msg = None

    def fail(self, msg):
        self.failed = True
        self.msg = msg


def category_names(names):
    """The category names the ps1 matches with, after mapping the camel-case names."""
    return [CAMEL_CASE_CATEGORIES.get(name.lower(), name) for name in names]


def match_text(info):
    """The string accept_list and reject_list are matched against.

    The ps1 builds `$matchList = ($updateInfo.title + $updateInfo.kb)`: a string plus an array is string
    concatenation in PowerShell, the array joined with spaces. So the patterns see ONE string, the title
    immediately followed by the 'KB<digits>' ids, e.g. '... (KB5034123)KB5034123'; `^KB5034123$` never matches.
    """
    return info['title'] + ' '.join(info['kb'])


def matches_any(text, patterns):
    """PowerShell `-imatch`: an unanchored, case-insensitive regex search, trying the patterns in order up to the first match."""
    for pattern in patterns:
        try:
            if re.search(pattern, text, re.IGNORECASE):
                return True
        except re.error as exc:
            raise PatternError('The regular expression pattern %s is not valid.' % pattern) from exc
    return False


def filter_reasons(update, info, params, categories):
    """Why the ps1 would skip this update, in the order it lists the reasons."""
    reasons = []
    text = match_text(info)
    accept = params.get('accept_list') or []
    reject = params.get('reject_list') or []
    if accept and not matches_any(text, accept):
        reasons.append('accept_list')
    if reject and matches_any(text, reject):
        reasons.append('reject_list')
    if update['hidden']:
        reasons.append('hidden')
    wanted = set(category.lower() for category in update['categories'])
    if not any(name == '*' or name.lower() in wanted for name in categories):
        reasons.append('category_names')
    if params.get('skip_optional') and update['browse_only']:
        reasons.append('skip_optional')
    return reasons


def run_round(state, params, check_mode):
    """One module run against the agent, changing `state` as the host would change."""
    rnd = Round(reboot_required=state['reboot_pending'])
    if not params['category_names']:
        # The ps1 passes the names to a mandatory [String[]] parameter, which refuses an empty list.
        rnd.fail("Cannot bind argument to parameter 'Category' because it is null.")
        return rnd
    categories = category_names(params['category_names'])
    try:
        for guid, update in offered_updates(state):
            info = {'id': guid, 'title': update['title'], 'kb': ['KB' + kb for kb in update['kb']], 'categories': list(update['categories'])}
            rnd.updates[guid] = info
            reasons = filter_reasons(update, info, params, categories)
            if reasons:
                rnd.filtered[guid] = reasons
            else:
                rnd.selected.append(guid)
    except PatternError as exc:
        # -imatch throws when it reaches a bad pattern; the ps1 has not reported any update yet.
        failed = Round(reboot_required=state['reboot_pending'])
        failed.fail(str(exc))
        return failed

    # The ps1 exits after the search in check mode, for state=searched and when nothing is selected.
    if check_mode or params['state'] == 'searched' or not rnd.selected:
        rnd.changed = bool(rnd.selected) and params['state'] != 'searched'
        return rnd
    if state['reboot_pending']:
        rnd.fail(MSG_REBOOT_PENDING)
        return rnd

    _download(state, rnd)
    if params['state'] == 'downloaded':
        return rnd
    _install(state, rnd)
    return rnd


def _download(state, rnd):
    """Downloads always succeed here; an update downloaded earlier is skipped, so it is not reported as downloaded."""
    for guid in rnd.selected:
        update = state['updates'][guid]
        if not update['downloaded']:
            update['downloaded'] = True
            rnd.download_results[guid] = {'result_code': RESULT_SUCCEEDED, 'hresult': 0}
            rnd.changed = True


def _install(state, rnd):
    """Installs the selected updates: failures stay offered, the others join installed_kbs."""
    failed = False
    for guid in rnd.selected:
        update = state['updates'][guid]
        if update['fail']:
            failed = True
            rnd.install_results[guid] = {'result_code': RESULT_FAILED, 'hresult': update['fail']['hresult'] & 0xFFFFFFFF}
            if update['fail'].get('msg'):
                rnd.install_results[guid]['msg'] = str(update['fail']['msg'])
            continue
        rnd.install_results[guid] = {'result_code': RESULT_SUCCEEDED, 'hresult': 0}
        del state['updates'][guid]
        state['installed_kbs'].extend(kb for kb in update['kb'] if kb not in state['installed_kbs'])
        state['installed_updates'][guid] = update['title']
        if update['reboot_required']:
            state['reboot_pending'] = True
    rnd.changed = True
    # After an install the ps1 reports the system's pending-reboot flag (also set by the successful ones on failure).
    rnd.reboot_required = state['reboot_pending']
    if failed:
        rnd.fail(MSG_INSTALL_FAILED)


# ---------------------------------------------------------------------------------------------------------------
# The action plugin: rounds, reboots, and the result


def hresult_error(hresult, msg=None):
    """failure_msg: the inventory's wording when it gives one, else the real plugin's '<text> (<ID> 0x<hex>)'."""
    if msg:
        return msg
    error_id, error_msg = HRESULT_ERRORS.get(hresult, ('UNKNOWN', 'Unknown WUA HRESULT %s' % hresult))
    return '%s (%s 0x%08X)' % (error_msg, error_id, hresult & 0xFFFFFFFF)


class UpdateRun:
    """What the real ActionModule accumulates over the rounds, and the update lists it builds from that."""

    def __init__(self):
        self.updates = {}
        self.selected = []
        self.filtered = {}
        self.download_results = {}
        self.install_results = {}

    def absorb(self, rnd):
        self.updates.update(rnd.updates)
        self.filtered.update(rnd.filtered)
        self.selected.extend(guid for guid in rnd.selected if guid not in self.selected)
        self.download_results.update(rnd.download_results)
        self.install_results.update(rnd.install_results)

    def update_info(self, guid):
        """One entry of `updates` / `filtered_updates` (ActionModule._get_update_info)."""
        raw = self.updates[guid]
        info = {
            'title': raw['title'],
            'kb': [kb[2:] if kb.startswith('KB') else kb for kb in raw['kb']],
            'categories': raw['categories'],
            'id': guid,
            'downloaded': False,
            'installed': False,
        }
        for action, results in (('downloaded', self.download_results), ('installed', self.install_results)):
            outcome = results.get(guid)
            if outcome:
                if outcome['result_code'] == RESULT_SUCCEEDED:
                    info[action] = True
                else:
                    info['failure_hresult_code'] = outcome['hresult']
                    info['failure_msg'] = hresult_error(outcome['hresult'], outcome.get('msg'))
        return info

    def listing(self):
        """The update lists and counters the real plugin adds to every result, even a failed or unreachable one."""
        result = {'found_update_count': 0, 'failed_update_count': 0, 'installed_update_count': 0, 'updates': {}, 'filtered_updates': {}}
        for guid in self.selected:
            info = self.update_info(guid)
            result['updates'][guid] = info
            result['found_update_count'] += 1
            if 'failure_hresult_code' in info:
                result['failed_update_count'] += 1
            elif info['installed']:
                result['installed_update_count'] += 1
        for guid, reasons in self.filtered.items():
            info = self.update_info(guid)
            info['filtered_reasons'] = reasons
            result['filtered_updates'][guid] = info
        return result


def reboot_host(state, check_mode, lose_connection):
    """The real plugin skips the reboot in check mode but still reports rebooted=true."""
    if check_mode:
        return
    state['reboots'] += 1
    state['reboot_pending'] = False
    if lose_connection and not state['connection_lost_on_reboot']:
        state['connection_lost_on_reboot'] = True
        raise ConnectionLost(MSG_CONNECTION_LOST)


def run_sync(state, params, check_mode, reboot, lose_connection, run):
    """ActionModule._run_sync: rounds of the module, with a reboot between them when reboot=true."""
    result = {'changed': False, 'reboot_required': False, 'rebooted': False}
    attempted = set()
    has_rebooted_on_failure = False
    for round_number in range(1, MAX_ROUNDS + 1):
        display.v('SIMULATION: win_updates - round %d' % round_number)
        rnd = run_round(state, params, check_mode)
        run.absorb(rnd)

        # Only updates already tried in an earlier round: the real plugin calls that an update loop.
        current = set(rnd.install_results)
        new = current - attempted
        attempted.update(current)
        if current and not new:
            for guid in current:
                run.install_results[guid] = {'result_code': RESULT_FAILED, 'hresult': -1}
            result['failed'] = True
            result['msg'] = MSG_UPDATE_LOOP % ', '.join(sorted(current))
            break

        reboot_required = result['reboot_required'] = rnd.reboot_required
        if rnd.changed:
            result['changed'] = True

        if rnd.failed:
            # With reboot=true the real plugin reboots once before it believes a failure.
            if reboot and not has_rebooted_on_failure and params['state'] != 'searched':
                reboot_required = True
                has_rebooted_on_failure = True
            else:
                result['failed'] = True
                result['msg'] = rnd.msg
                break
        elif reboot:
            has_rebooted_on_failure = False

        if reboot_required and reboot:
            reboot_host(state, check_mode, lose_connection)
            result['rebooted'] = True
            result['changed'] = True
            result['reboot_required'] = False

        if not reboot or check_mode or params['state'] != 'installed' or (not reboot_required and not rnd.selected):
            break
    else:
        raise SimulationError('no end to the update rounds after %d rounds: a bug in the simulation' % MAX_ROUNDS)
    return result


def simulate(host_state, args, check_mode=False, lose_connection_on_reboot=False):
    """Run one win_updates task against a host's agent state.

    Returns (result, new_state): the task result as ansible.windows.win_updates returns it, and the agent's state
    afterwards (host_state is not changed). Raises AnsibleActionFail where the real action plugin raises it
    (unknown options, bad reboot/reboot_timeout) and SimulationError for a broken test setup.
    """
    state = copy.deepcopy(host_state)
    reboot = check_action_options(args)
    run = UpdateRun()
    params, error = module_params(args)
    if error:
        result = {'failed': True, 'msg': error}
    else:
        try:
            result = run_sync(state, params, check_mode, reboot, lose_connection_on_reboot, run)
            result['failed'] = bool(result.get('failed'))
            result['invocation'] = {'module_args': params}
        except ConnectionLost as exc:
            # As the real plugin reports an AnsibleConnectionFailure: unreachable, and no changed/failed/rebooted.
            result = {'unreachable': True, 'msg': str(exc)}
    result.update(run.listing())
    return result, state


# ---------------------------------------------------------------------------------------------------------------
# Files: the state and the record of calls


def to_plain(value):
    """Plain JSON-able data from whatever Ansible hands over (tagged strings, lazy containers)."""
    if isinstance(value, Mapping):
        return dict((str(key), to_plain(item)) for key, item in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_plain(item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def state_path(state_dir, host):
    return os.path.join(state_dir, '%s.json' % host)


def calls_path(state_dir, host):
    return os.path.join(state_dir, '%s.calls.jsonl' % host)


def record_call(state_dir, host, args, check_mode):
    """One JSON line per task, {"args": <task args as received>, "check_mode": bool}, before any validation."""
    os.makedirs(state_dir, exist_ok=True)
    line = json.dumps({'args': to_plain(args), 'check_mode': bool(check_mode)}, sort_keys=True)
    with open(calls_path(state_dir, host), 'a', encoding='utf-8') as handle:
        handle.write(line + '\n')


def load_state(state_dir, host, agent):
    """The host's state file, or a new state from the inventory on first use."""
    path = state_path(state_dir, host)
    if os.path.exists(path):
        with open(path, encoding='utf-8') as handle:
            return json.load(handle)
    if agent is None:
        raise SimulationError('host %s has no sim_windows_update variable' % host)
    return initial_state(to_plain(agent))


def save_state(state_dir, host, state):
    """Written whole and renamed, so a test never reads half a file."""
    path = state_path(state_dir, host)
    with open(path + '.tmp', 'w', encoding='utf-8') as handle:
        json.dump(state, handle, indent=2, sort_keys=True)
    os.replace(path + '.tmp', path)


class ActionModule(ActionBase):
    """SIMULATED ansible.windows.win_updates (tests only): no Windows host is contacted."""

    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        self._supports_check_mode = True
        self._supports_async = True
        task_vars = task_vars or {}
        host = task_vars.get('inventory_hostname')
        state_dir = self._variable(task_vars, 'sim_windows_update_state_dir')
        if not state_dir:
            raise AnsibleActionFail('SIMULATION: set sim_windows_update_state_dir for host %s (this ansible.windows is the test stand-in)' % host)
        state_dir = str(state_dir)
        # Recorded first, so that tests also see the calls that fail validation.
        record_call(state_dir, host, self._task.args, self._task.check_mode)

        super(ActionModule, self).run(tmp, task_vars)  # rejects unknown options, as the real plugin does
        del tmp

        reboot = check_action_options(self._task.args)
        if self._task.async_val > 0:
            if reboot:
                raise AnsibleActionFail('async is not supported for this task when reboot=yes')
            raise AnsibleActionFail('SIMULATION: the win_updates stand-in does not simulate async')

        lose_connection = boolean(self._variable(task_vars, 'sim_lose_connection_on_reboot') or False, strict=False)
        try:
            state = load_state(state_dir, host, self._variable(task_vars, 'sim_windows_update'))
            result, new_state = simulate(state, to_plain(self._task.args), self._task.check_mode, lose_connection)
        except SimulationError as exc:
            raise AnsibleActionFail('SIMULATION: %s' % exc) from exc
        save_state(state_dir, host, new_state)
        return result

    def _variable(self, task_vars, name):
        value = task_vars.get(name)
        return self._templar.template(value) if value is not None else None
