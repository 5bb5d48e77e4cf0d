# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The defender.tvm benchmark harness (run it with benchmarks/run.sh).

Starts the Defender/Entra emulator in this process (HTTPS on 127.0.0.1 only) with a per-call
latency, then measures real ``ansible-playbook`` runs against it, all on the same emulator
settings:

* main: for each N, the ``ansible.builtin.uri`` baseline, the ``defender.tvm.missing_kbs``
  lookup and the ``defender.tvm.missing_kbs_info`` module over the same N software IDs, next to
  the lower bound the API allows;
* rate-limit: N = 250 under a 100 calls / 60 s sliding window, the collection at its defaults;
* fleet: ``defender.tvm.compliance`` (report mode) over inventories of simulated hosts (devices of
  the emulator's generated fleet), for the ``software``, ``device`` and ``export`` strategies; the
  device strategies only up to ``--fleet-device-max`` hosts, computed above it;
* export-reader: the vulnerability export's reader (``plugins/module_utils/_export.py``) over
  1,000,000 records, through JSON pages and through the files, each read in a process of its own
  (benchmarks/export_reader.py) against the emulator in another;
* inventory: ``ansible-inventory --list`` with the ``defender.tvm.devices`` inventory plugin and its
  documented example (``missing_kbs: true``) over 10,000 generated devices (``--inventory-fleet``),
  the JSON export route, the files route and a cached pair, and the example before (every
  constructed entry a template), against the emulator in a process of its own.

Every run is checked against the emulator's own data. Results are printed as tables and written
as JSON under benchmarks/results/.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, 'tests', 'emulator'))

from mde_emulator import Emulator  # noqa: E402 pylint: disable=wrong-import-position
from mde_emulator.ansible_env import playbook_env  # noqa: E402 pylint: disable=wrong-import-position

PLAYBOOKS = os.path.join(HERE, 'playbooks')
VARIANTS = ('baseline', 'lookup', 'module')
PLAYBOOK_OF = {'baseline': 'baseline_uri.yml', 'lookup': 'lookup.yml', 'module': 'module.yml', 'empty': 'empty.yml'}
SCOPE = 'https://api.securitycenter.microsoft.com/.default'
WINDOW_S = 60.0
# The same as tests/integration/harness.py: a Windows host that must never be contacted
# (WinRM on a closed loopback port). A contacted host would show up as unreachable.
UNREACHABLE_WINDOWS = {'ansible_connection': 'winrm', 'ansible_host': '127.0.0.1', 'ansible_port': 1,
                       'ansible_user': 'nobody', 'ansible_password': 'never-used'}
RESULT_RE = re.compile(r'BENCH_RESULT (\d+) ([0-9a-f]{40})')
PAGE_SIZE = os.sysconf('SC_PAGE_SIZE')
MB = 1024.0 * 1024.0


def log(message):
    print('[%s] %s' % (time.strftime('%H:%M:%S'), message), flush=True)


# -- the controller's memory: the ansible-playbook process and every process it forks ----------

def _children_by_parent():
    children = {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % name, 'rb') as handle:
                data = handle.read()
        except OSError:
            continue
        fields = data[data.rindex(b')') + 2:].split()  # the command name may hold spaces and parentheses
        children.setdefault(int(fields[1]), []).append(int(name))
    return children


def process_tree(pid):
    children = _children_by_parent()
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


def _rss(pid):
    try:
        with open('/proc/%d/statm' % pid) as handle:
            return int(handle.read().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0


def _pss(pid):
    try:
        with open('/proc/%d/smaps_rollup' % pid) as handle:
            for line in handle:
                if line.startswith('Pss:'):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return 0


class TreeSampler(threading.Thread):
    """Samples the RSS (and PSS) summed over a process tree every ``interval`` seconds; keeps the peaks.

    RSS summed over forks counts the pages they share with their parent once per process, so
    it overstates the memory really used; PSS shares them out and does not.
    """

    def __init__(self, pid, interval=0.05):
        super(TreeSampler, self).__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_main_rss = 0
        self.peak_processes = 0
        self._done = threading.Event()

    def run(self):
        while not self._done.is_set():
            pids = process_tree(self.pid)
            rss = [_rss(pid) for pid in pids]
            self.peak_rss = max(self.peak_rss, sum(rss))
            self.peak_main_rss = max(self.peak_main_rss, rss[0])
            self.peak_pss = max(self.peak_pss, sum(_pss(pid) for pid in pids))
            self.peak_processes = max(self.peak_processes, len([r for r in rss if r]))
            self._done.wait(self.interval)

    def stop(self):
        self._done.set()
        self.join(5)


def run_measured(command, env, cwd, log_path, timeout):
    """Run a command, its output to ``log_path``: wall time, exit code and the tree's peak memory."""
    with open(log_path, 'w') as output:
        start = time.monotonic()
        proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT,  # pylint: disable=consider-using-with
                                start_new_session=True)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        timed_out = []

        def kill():
            timed_out.append(True)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            # wait4 gives the largest RSS of any single process of the tree (reaped children count).
            dummy, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            wall = time.monotonic() - start
            sampler.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
    with open(log_path) as handle:
        text = handle.read()
    return {'wall_s': round(wall, 3), 'rc': proc.returncode, 'timed_out': bool(timed_out),
            'peak_rss_mb': round(sampler.peak_rss / MB, 1), 'peak_pss_mb': round(sampler.peak_pss / MB, 1),
            'peak_main_rss_mb': round(sampler.peak_main_rss / MB, 1),
            'max_single_process_rss_mb': round(usage.ru_maxrss / 1024.0, 1),
            'peak_processes': sampler.peak_processes, 'output': text}


# -- the lower bound ------------------------------------------------------------------------------

def schedule_bound(calls, latency, concurrency, budget, window=WINDOW_S, rule='server'):
    """The earliest time ``calls`` calls of ``latency`` seconds each can all be answered.

    At most ``concurrency`` in flight, and with a ``budget``, at most ``budget`` calls in any
    ``window``. ``rule='server'`` is the emulator's (and Defender's) rule: a call counts when it
    arrives, so call i may arrive ``window`` after call i - budget arrived. ``rule='pacer'`` is
    the client pacer's stricter rule: a call holds its slot until ``window`` after its response.
    Every call takes the same time, so sending each one as early as allowed is optimal.
    """
    return windows_bound(calls, latency, concurrency, [(budget, window)] if budget else [], rule)


def windows_bound(calls, latency, concurrency, limits, rule='server'):
    """``schedule_bound`` under several sliding windows at once: ``limits`` is a list of
    (calls, window seconds), e.g. Defender's 100 a minute and 1,500 an hour."""
    starts = []
    for index in range(calls):
        start = 0.0
        if index >= concurrency:
            start = max(start, starts[index - concurrency] + latency)
        for budget, window in limits:
            if budget and index >= budget:
                start = max(start, starts[index - budget] + window + (latency if rule == 'pacer' else 0.0))
        starts.append(start)
    return starts[-1] + latency if starts else 0.0


# Defender's documented call limits, per API (each API page documents its own): the machine and
# software APIs 100 calls a minute and 1,500 an hour; the vulnerability export's JSON pages (and
# its delta) 30 a minute and 1,000 an hour; its files route 5 a minute and 20 an hour
# (get-assessment-software-vulnerabilities.md). The export's blob downloads are not API calls.
DEFAULT_LIMITS = ((100, 60.0), (1500, 3600.0))
ROUTE_LIMITS = {
    'software_vulnerabilities_by_machine': ((30, 60.0), (1000, 3600.0)),
    'software_vulnerability_changes_by_machine': ((30, 60.0), (1000, 3600.0)),
    'software_vulnerabilities_export': ((5, 60.0), (20, 3600.0)),
}
# Pages that follow @odata.nextLink can only be asked for one after the other.
SEQUENTIAL_ROUTES = ('software_vulnerabilities_by_machine', 'software_vulnerability_changes_by_machine', 'machine_list')


def budget_bounds(by_route, latency, concurrency):
    """The least time the calls ``by_route`` (route -> calls) need under Defender's documented limits.

    ``per_api_s``: each API has its own budget, as documented, and the routes run side by side
    (the largest route's time). ``shared_s``: the machine and software calls share one budget of
    100 a minute and 1,500 an hour (as the collection's one requests_per_minute pacer treats them),
    side by side with the export's routes.
    """
    per_route = {}
    for route, calls in by_route.items():
        limits = ROUTE_LIMITS.get(route, DEFAULT_LIMITS)
        per_route[route] = round(windows_bound(calls, latency, 1 if route in SEQUENTIAL_ROUTES else concurrency,
                                               list(limits)), 1)
    shared_calls = sum(c for r, c in by_route.items() if r not in ROUTE_LIMITS)
    shared = [windows_bound(shared_calls, latency, concurrency, list(DEFAULT_LIMITS))] + \
        [per_route[r] for r in by_route if r in ROUTE_LIMITS]
    return {'per_api_s': max(per_route.values()) if per_route else 0.0, 'shared_s': round(max(shared), 1),
            'by_route_s': per_route}


def token_round_trip(emu, samples=5):
    """Median time of one client-credentials token request on a fresh TLS connection."""
    import requests  # pylint: disable=import-outside-toplevel
    app = emu.clients['secret']
    data = {'grant_type': 'client_credentials', 'client_id': app['client_id'], 'client_secret': app['client_secret'],
            'scope': SCOPE}
    times = []
    for dummy in range(samples):
        with requests.Session() as session:
            session.trust_env = False
            start = time.monotonic()
            response = session.post(emu.token_endpoint, data=data, verify=emu.ca_path, timeout=30)
            times.append(time.monotonic() - start)
            response.raise_for_status()
    return statistics.median(times)


# -- running playbooks ------------------------------------------------------------------------------

class Bench:
    """The emulator, the collection layout and the ansible-playbook environment of one benchmark."""

    def __init__(self, args, work):
        self.args = args
        self.work = work
        if args.collections_path:
            # A patched copy of the collection, e.g. to measure a proposed fix before it lands.
            self.collections = os.path.abspath(args.collections_path)
            log('collections path given: %s' % self.collections)
        else:
            self.collections = os.path.join(work, 'collections')
            layout = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'layout.py'), self.collections],
                                    check=True, stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()
            log('collection layout: %s' % layout)
        self.start_faults = {'latency_ms': args.latency_ms, 'token_latency_ms': args.latency_ms}
        log('building the emulator dataset (%d extra software, a generated fleet of %d devices)'
            % (args.extra_software, args.fleet_devices))
        self.emu = Emulator(os.path.join(work, 'emulator'), seed=args.seed, extra_software=args.extra_software,
                            fleet=args.fleet_devices, **self.start_faults)
        self.emu.start()
        log('emulator at %s (in this process)' % self.emu.url)
        if args.fleet_devices and any(s.startswith('export') for s in args.fleet_strategies):
            # Defender generates the export every few hours; it is there before the playbook asks.
            started = time.monotonic()
            summary = self.emu.prepare_export()
            log('vulnerability export generated: %d records of %d devices in %.1f s'
                % (summary['records'], summary['devices'], time.monotonic() - started))
        self.software = sorted(i for i in self.emu.data['software'] if re.search(r'_\d{5}$', i))
        self.counter = 0

    def close(self):
        self.emu.stop()

    def prepare(self, **faults):
        """Fresh emulator state (waits for in-flight requests), then the scenario's faults."""
        self.emu.reset()
        if faults:
            self.emu.configure(**faults)

    def env(self, extra=None):
        """ansible-playbook's environment (mde_emulator.ansible_env) with the secret app's credentials."""
        base = playbook_env(self.collections, self.work)
        base.update(self.emu.credentials_env('secret'))
        base.update(extra or {})
        return base

    def playbook(self, playbook, variables, inventory='localhost,', env=None, tag='run'):
        """One measured ansible-playbook run, with the emulator's stats for it."""
        self.counter += 1
        name = '%03d-%s' % (self.counter, tag)
        vars_file = os.path.join(self.work, name + '.vars.json')
        with open(vars_file, 'w') as handle:
            json.dump(variables, handle)
        command = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', inventory,
                   playbook, '-e', '@' + vars_file]
        if inventory == 'localhost,':
            command[3:3] = ['-c', 'local']
        env = dict(env or {})
        times_file = os.path.join(self.work, name + '.tasks.jsonl')
        if self.args.task_times:
            env.update({'ANSIBLE_CALLBACK_PLUGINS': os.path.join(HERE, 'callback_plugins'),
                        'ANSIBLE_CALLBACKS_ENABLED': 'task_times', 'DEFENDER_TVM_TASK_TIMES': times_file})
        run = run_measured(command, self.env(env), self.work, os.path.join(self.work, name + '.log'), self.args.timeout)
        if self.args.task_times and os.path.exists(times_file):
            run['task_times'] = slowest_tasks(times_file)
        stats = self.emu.stats()
        run.update({
            'api_requests': stats['api_requests'],
            'api_by_route': dict((k, v) for k, v in stats['api_by_route'].items() if v),
            'status_429': stats['status_counts'].get('429', 0),
            'status_counts': stats['status_counts'],
            'token_requests': stats['token_requests'],
            'max_in_any_60s': stats['max_in_any_60s'],
            'max_concurrent': stats['max_concurrent'],
            'export_records_served': dict((k, v) for k, v in stats.get('export_records_served', {}).items() if v),
            'file_downloads': stats.get('file_downloads', 0),
            'file_bytes_served': stats.get('file_bytes_served', 0),
            'log': name + '.log',
        })
        return run


def expected_digest(emu, software_ids):
    pairs = sorted('%s %s' % (sid, kb['id']) for sid in software_ids for kb in emu.data['software'][sid]['missing_kbs'])
    return len(pairs), hashlib.sha1(','.join(pairs).encode('utf-8')).hexdigest()


def check_answer(run, expected):
    """The playbook printed the count and digest of its (software ID, KB) pairs: compare with the emulator's data."""
    found = RESULT_RE.search(run['output'])
    run['correct'] = bool(run['rc'] == 0 and found and (int(found.group(1)), found.group(2)) == expected)
    if not run['correct']:
        run['error_tail'] = run['output'][-3000:]


def strip(run):
    return dict((k, v) for k, v in run.items() if k != 'output')


def median(values):
    return round(statistics.median(values), 3) if values else None


# -- scenarios --------------------------------------------------------------------------------------

def lower_bound_parts(bench):
    args = bench.args
    bench.prepare()
    log('measuring the empty ansible-playbook run (%d runs) and the token round trip' % args.runs)
    empty = [bench.playbook(os.path.join(PLAYBOOKS, PLAYBOOK_OF['empty']), {}, tag='empty') for dummy in range(args.runs)]
    for run in empty:
        if run['rc'] != 0:
            raise RuntimeError('the empty playbook failed:\n%s' % run['output'][-3000:])
    bench.prepare()
    token = token_round_trip(bench.emu)
    bench.prepare()
    return {'empty_playbook_s': median([r['wall_s'] for r in empty]),
            'empty_playbook_runs_s': [r['wall_s'] for r in empty],
            'empty_playbook_peak_rss_mb': max(r['peak_rss_mb'] for r in empty),
            'token_round_trip_s': round(token, 3)}


def bound_for(bench, parts, calls, budget):
    args = bench.args
    latency = args.latency_ms / 1000.0
    schedule = schedule_bound(calls, latency, args.max_concurrency, budget, rule='server')
    return {'calls': calls, 'schedule_s': round(schedule, 3),
            'schedule_pacer_rule_s': round(schedule_bound(calls, latency, args.max_concurrency, budget, rule='pacer'), 3),
            'total_s': round(parts['token_round_trip_s'] + schedule + parts['empty_playbook_s'], 3)}


def main_scenario(bench, parts):
    args = bench.args
    rows = []
    collection_env = {'MDE_REQUESTS_PER_MINUTE': str(args.budget)} if args.budget != 100 else {}
    for size in args.sizes:
        ids = bench.software[:size]
        expected = expected_digest(bench.emu, ids)
        runs = dict((variant, []) for variant in args.variants)
        for index in range(args.runs):
            for variant in args.variants:
                bench.prepare(rate_limit_per_minute=args.budget)
                run = bench.playbook(os.path.join(PLAYBOOKS, PLAYBOOK_OF[variant]), {'software_ids': ids},
                                     env=collection_env, tag='%s-n%d' % (variant, size))
                check_answer(run, expected)
                runs[variant].append(strip(run))
                log('N=%-4d %-8s run %d: %7.2f s, %d calls, %d x 429, %d token(s), peak RSS %.0f MB%s'
                    % (size, variant, index + 1, run['wall_s'], run['api_requests'], run['status_429'],
                       run['token_requests'], run['peak_rss_mb'], '' if run['correct'] else '  WRONG OR FAILED'))
        bound = bound_for(bench, parts, size, args.budget)
        row = {'n': size, 'expected_pairs': expected[0], 'lower_bound': bound, 'variants': {}}
        for variant, variant_runs in runs.items():
            row['variants'][variant] = summarise(variant_runs)
        rows.append(row)
    return rows


def summarise(runs):
    return {'median_wall_s': median([r['wall_s'] for r in runs]),
            'walls_s': [r['wall_s'] for r in runs],
            'api_requests': max(r['api_requests'] for r in runs),
            'status_429': max(r['status_429'] for r in runs),
            'token_requests': max(r['token_requests'] for r in runs),
            'peak_rss_mb': max(r['peak_rss_mb'] for r in runs),
            'peak_pss_mb': max(r['peak_pss_mb'] for r in runs),
            'max_single_process_rss_mb': max(r['max_single_process_rss_mb'] for r in runs),
            'all_correct': all(r.get('correct', r['rc'] == 0) for r in runs),
            'runs': runs}


def rate_limit_scenario(bench, parts):
    args = bench.args
    size, budget = args.rate_limit_n, 100
    ids = bench.software[:size]
    expected = expected_digest(bench.emu, ids)
    bound = bound_for(bench, parts, size, budget)
    rows = []
    for variant in args.rate_limit_variants:
        runs = []
        for index in range(args.rate_limit_runs):
            bench.prepare(rate_limit_per_minute=budget)
            run = bench.playbook(os.path.join(PLAYBOOKS, PLAYBOOK_OF[variant]), {'software_ids': ids},
                                 tag='ratelimit-%s' % variant)
            check_answer(run, expected)
            runs.append(strip(run))
            log('rate limit N=%d %-7s run %d: %7.2f s (schedule bound %.2f s), %d calls, %d x 429, max %d in 60 s'
                % (size, variant, index + 1, run['wall_s'], bound['schedule_s'], run['api_requests'], run['status_429'],
                   run['max_in_any_60s']))
        summary = summarise(runs)
        summary.update({'variant': variant, 'max_in_any_60s': max(r['max_in_any_60s'] for r in runs),
                        'ratio_to_schedule': round(summary['median_wall_s'] / bound['schedule_s'], 3),
                        'ratio_to_lower_bound': round(summary['median_wall_s'] / bound['total_s'], 3)})
        rows.append(summary)
    return {'n': size, 'budget_per_60s': budget, 'lower_bound': bound, 'variants': rows}


def slowest_tasks(path, count=12):
    """The tasks that took longest (over all hosts), from the task_times callback's lines."""
    totals = {}
    with open(path) as handle:
        for line in handle:
            entry = json.loads(line)
            key = '%s (%s)' % (entry['task'], os.path.basename(entry['path']))
            totals[key] = totals.get(key, 0.0) + entry['s']
    return [{'task': k, 's': round(v, 2)} for k, v in sorted(totals.items(), key=lambda kv: -kv[1])[:count]]


def fleet_software(bench):
    """Ten catalogue products, those with KBs first: what a patching team would ask about."""
    catalogue = [s for s in bench.emu.data['software'].values() if not re.search(r'_\d{5}$', s['id']) and s['weaknesses']]
    catalogue.sort(key=lambda s: (not s['missing_kbs'], s['id']))
    return [s['id'] for s in catalogue[:10]]


def fleet_hosts(bench, count):
    """The first ``count`` devices of the emulator's generated fleet: (host name, device ID) pairs."""
    fleet = bench.emu.dataset.fleet
    if fleet is None or count > len(fleet.ids):
        raise RuntimeError('the fleet scenario needs %d generated devices, the emulator has %d'
                           % (count, len(fleet.ids) if fleet else 0))
    return list(zip(fleet.names[:count], fleet.ids[:count]))


def check_host_kbs(report, pairs, truth):
    """Every host's KBs in the report against the export's ground truth (its device's getmissingkbs):
    the number of hosts that match, and a few that do not."""
    wrong = []
    hosts = report.get('hosts') or {}
    for name, device_id in pairs:
        entry = hosts.get(name) or {}
        expected = sorted('KB' + kb for kb in truth.get(device_id, {}))
        found = sorted(entry.get('kbs') or {})
        if found != expected or entry.get('device_id', device_id) != device_id:
            wrong.append({'host': name, 'expected': expected, 'reported': found, 'status': entry.get('status')})
    return len(pairs) - len(wrong), wrong[:5]


FLEET_STRATEGY = {'software': ('software', None), 'device': ('device', None), 'device-ids': ('device', None),
                  'export': ('export', 'json'), 'export-files': ('export', 'files')}


def fleet_scenario(bench):
    args = bench.args
    latency = args.latency_ms / 1000.0
    software = fleet_software(bench)
    rows = []
    for strategy in args.fleet_strategies:
        if strategy not in FLEET_STRATEGY:
            raise RuntimeError('unknown fleet strategy %r (known: %s)' % (strategy, ', '.join(FLEET_STRATEGY)))
        role_strategy, export_source = FLEET_STRATEGY[strategy]
        for count in args.fleet_sizes:
            pairs = fleet_hosts(bench, count)
            if role_strategy == 'device' and count > args.fleet_device_max:
                # Not run: hours under Defender's budgets. Its calls are known: the missing KBs per host, and
                # (device, host names) a device listing per twelve names.
                by_route = {'machine_missing_kbs': count}
                if strategy == 'device':
                    by_route['machine_list'] = -(-count // 12)
                bounds = budget_bounds(by_route, latency, args.max_concurrency)
                row = {'strategy': strategy, 'hosts': count, 'run': False, 'correct': True, 'api_requests': sum(by_route.values()),
                       'api_by_route': by_route, 'min_s_under_budgets': bounds['per_api_s'],
                       'min_s_under_shared_budget': bounds['shared_s'], 'budget_bounds': bounds,
                       'min_s_under_100_per_min': round(schedule_bound(sum(by_route.values()), latency, args.max_concurrency, 100), 1)}
                rows.append(row)
                log('fleet %-12s %5d hosts: not run (--fleet-device-max %d); %d calls need at least %.0f s under the budgets'
                    % (strategy, count, args.fleet_device_max, row['api_requests'], bounds['per_api_s']))
                continue
            # the hosts' connection settings once, for the group, as a fleet's inventory has them
            hosts = dict((name, None) for name, dummy in pairs)
            if strategy == 'device-ids':
                # the device strategy with each host's Defender device ID in the inventory (as a dynamic
                # inventory would give it): no name lookups
                for name, device_id in pairs:
                    hosts[name] = {'kb_patching_device_name': device_id}
            inventory = os.path.join(bench.work, 'fleet-%s-%d.inventory.yml' % (strategy, count))
            with open(inventory, 'w') as handle:
                yaml.safe_dump({'all': {'children': {'windows': {'vars': dict(UNREACHABLE_WINDOWS), 'hosts': hosts}}}},
                               handle)
            report_dir = os.path.join(bench.work, 'fleet-%s-%d-reports' % (strategy, count))
            shutil.rmtree(report_dir, ignore_errors=True)
            variables = {'kb_patching_strategy': role_strategy, 'kb_patching_report_dir': report_dir}
            if role_strategy == 'software':
                variables['kb_patching_software_ids'] = software
            if export_source:
                variables['kb_patching_export_source'] = export_source
            bench.prepare()
            # The fleet runs without a call budget on the emulator (the device strategy needs two calls per host);
            # the collection is told so. The budgets' cost is given as a bound instead.
            run = bench.playbook('defender.tvm.compliance', variables, inventory=inventory, tag='fleet-%s-%d' % (strategy, count),
                                 env={'MDE_REQUESTS_PER_MINUTE': '0'})
            report = None
            path = os.path.join(report_dir, 'kb_patching.json')
            if os.path.exists(path):
                with open(path) as handle:
                    report = json.load(handle)
            # rc 2: the gate failed non-compliant hosts, as it should; anything else is a failure.
            run['correct'] = bool(report and report['summary']['hosts'] == count and run['rc'] in (0, 2)
                                  and 'unreachable=1' not in run['output'])
            if report and role_strategy in ('device', 'export'):
                # Each host's own KBs: the export's ground truth (the same as each device's getmissingkbs).
                truth = bench.emu.export_truth([device_id for dummy, device_id in pairs])
                matched, wrong = check_host_kbs(report, pairs, truth)
                run.update({'hosts_matching_truth': matched, 'hosts_not_matching_truth': wrong,
                            'host_kb_pairs_expected': sum(len(v) for v in truth.values())})
                run['correct'] = run['correct'] and matched == count and not report['summary'].get('not_in_defender')
            run['report_summary'] = report and report['summary']
            if not run['correct']:
                run['error_tail'] = run['output'][-3000:]
            calls = run['api_requests']
            bounds = budget_bounds(run['api_by_route'], latency, args.max_concurrency)
            run.update({'strategy': strategy, 'hosts': count, 'run': True,
                        'software_ids': len(software) if strategy == 'software' else 0,
                        'export_source': export_source, 'export_records_served': run.get('export_records_served'),
                        'min_s_under_budgets': bounds['per_api_s'], 'min_s_under_shared_budget': bounds['shared_s'],
                        'budget_bounds': bounds,
                        'min_s_under_100_per_min': round(schedule_bound(calls, latency, args.max_concurrency, 100), 1)})
            rows.append(strip(run))
            log('fleet %-12s %5d hosts: %7.2f s, %d calls %s, %d token(s), peak RSS %.0f MB, rc %d, min. %.1f s under '
                'the budgets%s%s'
                % (strategy, count, run['wall_s'], calls, run['api_by_route'], run['token_requests'], run['peak_rss_mb'],
                   run['rc'], bounds['per_api_s'],
                   ', %d/%d hosts match the truth' % (run['hosts_matching_truth'], count) if 'hosts_matching_truth' in run else '',
                   '' if run['correct'] else '  FAILED'))
            for entry in run.get('task_times', [])[:6]:
                log('    %7.2f s  %s' % (entry['s'], entry['task']))
    return {'software_ids': software, 'hosts': 'the first N devices of the emulator\'s generated fleet (fleet=%d)'
            % args.fleet_devices, 'rows': rows}


# -- the export reader: 1,000,000 records, the emulator in a process of its own ----------------------

class EmulatorProcess:
    """``python -m mde_emulator`` in a process of its own, its export generated before the ready line."""

    def __init__(self, state_dir, log_path, options):
        command = [sys.executable, '-m', 'mde_emulator', '--state-dir', state_dir, '--prepare-export']
        for key, value in options.items():
            command += ['--' + key.replace('_', '-'), str(value)]
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, 'tests', 'emulator'))
        self.log = open(log_path, 'w')  # pylint: disable=consider-using-with
        self.proc = subprocess.Popen(command, cwd=os.path.join(ROOT, 'tests', 'emulator'), env=env,  # pylint: disable=consider-using-with
                                     stdout=subprocess.PIPE, stderr=self.log, universal_newlines=True)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError('the emulator process exited before it was ready; see %s' % log_path)
        self.info = json.loads(line)
        import requests  # pylint: disable=import-outside-toplevel
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = self.info['ca_path']

    def admin(self, method, name, payload=None):
        response = self.session.request(method, self.info['url'] + '/_emulator/' + name, json=payload, timeout=600)
        response.raise_for_status()
        return response.json()

    def credentials_env(self):
        app = self.info['clients']['secret']
        return {'MDE_TENANT_ID': self.info['tenant_id'], 'MDE_CLIENT_ID': app['client_id'],
                'MDE_CLIENT_SECRET': app['client_secret'], 'MDE_API_URL': self.info['url'],
                'MDE_AUTHORITY_URL': self.info['url'], 'MDE_CA_PATH': self.info['ca_path']}

    def stop(self):
        self.session.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def truth_digest(truth):
    """What benchmarks/export_reader.py prints for a correct read: the SHA-1 of the sorted
    ``device kb count`` lines of every device with a KB."""
    lines = sorted('%s %s %d' % (device, kb, count) for device, kbs in truth.items() for kb, count in kbs.items())
    return len(lines), hashlib.sha1('\n'.join(lines).encode('utf-8')).hexdigest()


def process_cpu(pid):
    """User + system seconds of a live process (its threads included), from /proc."""
    with open('/proc/%d/stat' % pid, 'rb') as handle:
        data = handle.read()
    fields = data[data.rindex(b')') + 2:].split()
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf('SC_CLK_TCK'))


def top_functions(path, count=25):
    """The functions with the most own time in a cProfile stats file."""
    import pstats  # pylint: disable=import-outside-toplevel
    stats = pstats.Stats(path)
    rows = []
    for (filename, line, name), (dummy, calls, own, cumulative, dummy2) in stats.stats.items():
        rows.append({'function': '%s:%d(%s)' % (os.path.relpath(filename, ROOT) if filename.startswith(ROOT) else filename, line, name),
                     'calls': calls, 'own_s': round(own, 3), 'cumulative_s': round(cumulative, 3)})
    rows.sort(key=lambda r: -r['own_s'])
    return rows[:count]


def export_reader_scenario(bench):
    """The reader (plugins/module_utils/_export.py) over 1,000,000 records, through JSON pages and
    through the files, each read in a process of its own against the emulator in another."""
    args = bench.args
    options = {'seed': args.seed, 'fleet': args.reader_fleet, 'export_parts': args.reader_export_parts,
               'latency_ms': args.latency_ms, 'token_latency_ms': args.latency_ms}
    if args.reader_findings_per_device:
        options['findings_per_device'] = args.reader_findings_per_device
    state = os.path.join(args.export_cache, 'reader-%dx%s-p%d' % (args.reader_fleet, args.reader_findings_per_device or 'drawn',
                                                                  args.reader_export_parts))
    log('export reader: starting the emulator in its own process (fleet %d, %s findings per device, %d part files); '
        'the export is generated into %s unless it is there already' % (
            args.reader_fleet, args.reader_findings_per_device or 'drawn', args.reader_export_parts, state))
    started = time.monotonic()
    emu = EmulatorProcess(state, os.path.join(bench.work, 'reader-emulator.log'), options)
    try:
        log('emulator ready in %.1f s (pid %d)' % (time.monotonic() - started, emu.info['pid']))
        summary = emu.admin('GET', 'export')
        started = time.monotonic()
        expected = truth_digest(emu.admin('POST', 'export-truth', {}))
        log('export: %d records of %d devices, %d KB findings, %d files (%.1f MB); ground truth: %d (device, KB) pairs '
            '(%.1f s)' % (summary['records'], summary['devices'], summary['kb_findings_total'], len(summary['files']),
                          summary['file_bytes'] / MB, expected[0], time.monotonic() - started))
        env = playbook_env(bench.collections, bench.work)
        env.update(emu.credentials_env())
        runs = []
        for source in args.reader_sources:
            for index in range(args.reader_runs + (1 if args.reader_profile else 0)):
                profile = args.reader_profile and index == args.reader_runs
                emu.admin('POST', 'reset')
                command = [sys.executable, os.path.join(HERE, 'export_reader.py'), '--collections', bench.collections,
                           '--source', source, '--page-size', str(args.reader_page_size)]
                profile_path = os.path.join(bench.work, 'reader-%s.prof' % source)
                if profile:
                    command += ['--profile', profile_path]
                load_before = os.getloadavg()
                emulator_cpu = process_cpu(emu.proc.pid)
                log_path = os.path.join(bench.work, 'reader-%s-%d%s.log' % (source, index + 1, '-profile' if profile else ''))
                run = run_measured(command, env, bench.work, log_path, args.timeout)
                emulator_cpu = process_cpu(emu.proc.pid) - emulator_cpu
                found = re.search(r'^EXPORT_READ (.*)$', run['output'], re.M)
                read = json.loads(found.group(1)) if found else {}
                stats = emu.admin('GET', 'stats')
                read.update({'run': index + 1, 'profiled': bool(profile), 'process_wall_s': run['wall_s'], 'rc': run['rc'],
                             'sampled_peak_rss_mb': run['peak_rss_mb'],
                             'emulator_cpu_s': round(emulator_cpu, 2), 'loadavg_before': [round(v, 2) for v in load_before],
                             'loadavg_after': [round(v, 2) for v in os.getloadavg()],
                             'api_by_route': dict((k, v) for k, v in stats['api_by_route'].items() if v),
                             'token_requests': stats['token_requests'], 'file_downloads': stats.get('file_downloads', 0),
                             'file_bytes_served': stats.get('file_bytes_served', 0), 'status_429': stats['status_counts'].get('429', 0),
                             'log': os.path.basename(log_path)})
                read['correct'] = bool(run['rc'] == 0 and found and read['records_read'] == summary['records']
                                       and (read['kb_pairs'], read['digest']) == expected)
                if not read['correct']:
                    read['error_tail'] = run['output'][-3000:]
                if profile:
                    read['top_functions'] = top_functions(profile_path)
                runs.append(read)
                log('reader %-5s %s: %s records in %.2f s (%.0f records/s), CPU %.2f s (%.0f records per CPU s), RSS %.0f -> '
                    '%.0f MB (+%.0f MB), %s calls, emulator CPU %.1f s, load %.1f%s' % (
                        source, 'profiled' if profile else 'run %d' % (index + 1), read.get('records_read'), read.get('wall_s', 0),
                        read.get('records_per_s') or 0, read.get('cpu_s', 0), read.get('records_per_cpu_s') or 0,
                        read.get('rss_before_mb', 0), read.get('peak_rss_mb', 0), read.get('rss_growth_mb', 0),
                        read['api_by_route'], emulator_cpu, load_before[0], '' if read['correct'] else '  WRONG OR FAILED'))
                if profile:
                    for entry in read['top_functions'][:10]:
                        log('    %7.2f s own %9d calls  %s' % (entry['own_s'], entry['calls'], entry['function']))
    finally:
        emu.stop()
    latency = args.latency_ms / 1000.0
    summaries = []
    for source in args.reader_sources:
        measured = [r for r in runs if r['source'] == source and not r['profiled']]
        if not measured:
            continue
        best = dict(measured[0])
        middle = sorted(measured, key=lambda r: r['wall_s'])[len(measured) // 2]
        summaries.append({
            'source': source, 'runs': len(measured), 'median_wall_s': middle['wall_s'], 'walls_s': [r['wall_s'] for r in measured],
            'records': summary['records'], 'median_records_per_s': middle['records_per_s'], 'cpu_s_of_median': middle['cpu_s'],
            'records_per_cpu_s_of_median': middle['records_per_cpu_s'],
            'max_rss_growth_mb': max(r['rss_growth_mb'] for r in measured),
            'rss_before_mb': best['rss_before_mb'], 'max_peak_rss_mb': max(r['peak_rss_mb'] for r in measured),
            'api_by_route': best['api_by_route'], 'file_downloads': best['file_downloads'],
            'min_s_under_budgets': budget_bounds(best['api_by_route'], latency, args.max_concurrency)['per_api_s'],
            'all_correct': all(r['correct'] for r in measured)})
    return {'emulator': dict(options, process='its own (python -m mde_emulator --prepare-export)'),
            'export': dict((k, v) for k, v in summary.items() if k not in ('files', 'directory')),
            'files': len(summary['files']), 'page_size': args.reader_page_size, 'expected_kb_pairs': expected[0],
            'summaries': summaries, 'runs': runs}


# -- the inventory plugin: ansible-inventory --list over the emulator's generated fleet -------------

MACHINES_PAGE = 10000  # GET /api/machines: "Maximum page size is 10,000"


def documented_example():
    """The plugin's first EXAMPLE as it is documented (plugins/inventory/devices.py), without its filter:
    every device is a host."""
    import ast  # pylint: disable=import-outside-toplevel
    with open(os.path.join(ROOT, 'plugins', 'inventory', 'devices.py')) as handle:
        tree = ast.parse(handle.read())
    examples = next(node.value.value for node in tree.body if isinstance(node, ast.Assign)
                    and getattr(node.targets[0], 'id', None) == 'EXAMPLES')
    config = yaml.safe_load(examples.split('\n# ---', 1)[0])
    config.pop('filter', None)
    return config


# The example before missing_kb_groups and the keys read without a template: every constructed entry a
# template (5 keyed_groups, 1 groups, 1 compose), for the comparison ('templates' runs).
TEMPLATES_CONFIG = {
    'plugin': 'defender.tvm.devices', 'missing_kbs': True,
    'keyed_groups': [{'key': 'mde_os_platform', 'prefix': 'os'}, {'key': 'mde_exposure_level', 'prefix': 'exposure'},
                     {'key': 'mde_risk_score', 'prefix': 'risk'}, {'key': 'mde_machine_tags', 'prefix': 'tag'},
                     {'key': "mde_missing_kbs | map('lower') | list", 'prefix': 'missing'}],
    'groups': {'needs_patching': 'mde_missing_kb_count > 0'},
    'compose': {'ansible_host': 'mde_last_ip_address'}}


def inventory_config(source, cache_dir=None, templates=False):
    """The inventory file: the documented example (or, with ``templates``, TEMPLATES_CONFIG) on the given
    export route, with a jsonfile cache in ``cache_dir``."""
    config = dict(TEMPLATES_CONFIG if templates else documented_example(), export_source=source)
    if cache_dir:
        config.update({'cache': True, 'cache_plugin': 'ansible.builtin.jsonfile', 'cache_connection': cache_dir,
                       'cache_timeout': 3600})
    return config


def unwrap_unsafe(value):
    """``ansible-inventory --list`` prints unsafe values as {"__ansible_unsafe": ...} on some ansible-core versions."""
    if isinstance(value, dict):
        if len(value) == 1 and '__ansible_unsafe' in value:
            return unwrap_unsafe(value['__ansible_unsafe'])
        return dict((unwrap_unsafe(k), unwrap_unsafe(v)) for k, v in value.items())
    if isinstance(value, list):
        return [unwrap_unsafe(v) for v in value]
    return value


def emulator_device_ids(emu):
    """Every device the emulator lists (GET /api/machines, paged), with a token from the admin
    endpoint: the ground truth of the hosts, read without the collection. Call before a reset."""
    token = emu.admin('POST', 'token', {'client': 'secret'})['access_token']
    url, ids = emu.info['url'] + '/api/machines', []
    while url:
        response = emu.session.get(url, headers={'Authorization': 'Bearer ' + token}, timeout=600)
        response.raise_for_status()
        body = response.json()
        ids.extend(m['id'].lower() for m in body['value'])
        url = body.get('@odata.nextLink')
    return ids


def group_members(listing):
    """Each group of a --list answer with its hosts, those of its child groups included (as Ansible's
    ``groups`` and ``-l`` see them: needs_patching holds the missing_kb groups)."""
    direct = dict((name, data) for name, data in listing.items() if name != '_meta' and isinstance(data, dict))
    members = {}

    def hosts_of(name, seen):
        if name not in members:
            found = set(direct.get(name, {}).get('hosts') or [])
            for child in direct.get(name, {}).get('children') or []:
                if child not in seen:
                    found |= hosts_of(child, seen | {child})
            members[name] = found
        return members[name]
    for name in direct:
        hosts_of(name, {name})
    return members


def check_inventory(listing, device_ids, truth):
    """The --list answer against the emulator: every device a host (by mde_device_id), each host's
    mde_missing_kbs (and count) its device's KBs in the export's truth, the missing_kb<nr> groups
    exactly the hosts missing that KB, needs_patching exactly the hosts missing any."""
    listing = unwrap_unsafe(listing)
    hostvars = (listing.get('_meta') or {}).get('hostvars') or {}
    host_of, problems = {}, []
    for host, variables in hostvars.items():
        device = str(variables.get('mde_device_id') or '').lower()
        if device in host_of:
            problems.append('device %s is two hosts: %s and %s' % (device, host_of[device], host))
        host_of[device] = host
    missing_hosts = [d for d in device_ids if d not in host_of]
    extra_hosts = sorted(set(host_of) - set(device_ids))
    wrong_kbs, expected_groups, expected_patching = [], {}, set()
    for device in device_ids:
        kbs = truth.get(device, {})
        for kb in kbs:
            expected_groups.setdefault('missing_kb%s' % str(kb).lower(), set()).add(host_of.get(device))
        host = host_of.get(device)
        if host is None:
            continue
        if kbs:
            expected_patching.add(host)
        variables = hostvars[host]
        found = variables.get('mde_missing_kbs') or []
        expected = set('KB%s' % kb for kb in kbs)
        if set(found) != expected or len(found) != len(expected) or variables.get('mde_missing_kb_count') != len(expected):
            wrong_kbs.append({'host': host, 'device': device, 'expected': sorted(expected), 'found': found,
                              'count': variables.get('mde_missing_kb_count')})
    groups = group_members(listing)
    found_groups = dict((name, hosts) for name, hosts in groups.items() if re.match(r'^missing_kb\d+$', name))
    wrong_groups = sorted(name for name in set(found_groups) | set(expected_groups)
                          if found_groups.get(name, set()) != expected_groups.get(name, set()))
    patching_right = groups.get('needs_patching', set()) == expected_patching
    correct = not (problems or missing_hosts or extra_hosts or wrong_kbs or wrong_groups) and patching_right
    return {'correct': correct, 'hosts': len(hostvars), 'devices': len(device_ids), 'groups': len(groups),
            'missing_kb_groups': len(found_groups), 'host_kb_pairs': sum(len(v.get('mde_missing_kbs') or []) for v in hostvars.values()),
            'hosts_needing_patching': len(groups.get('needs_patching', ())), 'needs_patching_right': patching_right,
            'devices_not_hosts': missing_hosts[:5], 'devices_not_hosts_count': len(missing_hosts),
            'hosts_not_devices': extra_hosts[:5], 'hosts_with_wrong_kbs': wrong_kbs[:5], 'hosts_with_wrong_kbs_count': len(wrong_kbs),
            'wrong_groups': wrong_groups[:5], 'wrong_groups_count': len(wrong_groups), 'problems': problems[:5]}


def process_memory(pid):
    """(RSS, peak RSS since start or since reset_peak_rss) of a live process, in MB, from /proc."""
    with open('/proc/%d/status' % pid) as handle:
        fields = dict(line.split(':', 1) for line in handle if ':' in line)
    return int(fields['VmRSS'].split()[0]) / 1024.0, int(fields['VmHWM'].split()[0]) / 1024.0


def reset_peak_rss(pid):
    """Start a process's peak RSS (VmHWM) again from its current RSS (Linux: clear_refs 5); False if not allowed."""
    try:
        with open('/proc/%d/clear_refs' % pid, 'w') as handle:
            handle.write('5')
        return True
    except (IOError, OSError):
        return False


# cProfile's cumulative time of these functions: where an ansible-inventory run's time goes
INVENTORY_PARTS = (
    ('plugin parse', 'plugins/inventory/devices.py', 'parse'),
    ('_fetch (device listing and export read)', 'plugins/inventory/devices.py', '_fetch'),
    ('list_devices', 'plugins/module_utils/_devices.py', 'list_devices'),
    ('read_export', 'plugins/module_utils/_export.py', 'read_export'),
    ('_populate', 'plugins/inventory/devices.py', '_populate'),
    ('_host_names', 'plugins/inventory/devices.py', '_host_names'),
    ('wrap_var', 'ansible/utils/unsafe_proxy.py', 'wrap_var'),
    ('InventoryData.add_host', 'ansible/inventory/data.py', 'add_host'),
    ('InventoryData.set_variable', 'ansible/inventory/data.py', 'set_variable'),
    ('_add_host_to_missing_kb_groups', 'plugins/inventory/devices.py', '_add_host_to_missing_kb_groups'),
    ('_set_composite_vars (compose)', 'ansible/plugins/inventory/__init__.py', '_set_composite_vars'),
    ('_add_host_to_composed_groups (groups)', 'ansible/plugins/inventory/__init__.py', '_add_host_to_composed_groups'),
    ('_add_host_to_keyed_groups (keyed_groups)', 'ansible/plugins/inventory/__init__.py', '_add_host_to_keyed_groups'),
    ('the plugin\'s _compose (without a template)', 'plugins/inventory/devices.py', '_compose'),
    ('Constructable._compose (templates)', 'ansible/plugins/inventory/__init__.py', '_compose'),
    ('TemplateEngine._compile_expression', 'ansible/_internal/_templating/_engine.py', '_compile_expression'),
    ('evaluate_conditional', 'ansible/_internal/_templating/_engine.py', 'evaluate_conditional'),
    ('ansible-inventory json_inventory', 'ansible/cli/inventory.py', 'json_inventory'),
    ('ansible-inventory dump (JSON encoding)', 'ansible/cli/inventory.py', 'dump'),
)


def profile_parts(path):
    """The cumulative seconds of INVENTORY_PARTS in a cProfile stats file (summed over same-named functions of
    one file); the profiled process's total."""
    import pstats  # pylint: disable=import-outside-toplevel
    stats = pstats.Stats(path)
    parts = dict((label, 0.0) for label, dummy, dummy2 in INVENTORY_PARTS)
    for (filename, dummy, name), (dummy2, calls, dummy3, cumulative, callers) in stats.stats.items():
        for label, suffix, function in INVENTORY_PARTS:
            if name == function and filename.replace(os.sep, '/').endswith(suffix):
                # a recursive function's cumulative time counts once (cProfile gives it once per primitive call)
                parts[label] += cumulative
    total = max(cumulative for dummy, dummy2, dummy3, cumulative, dummy4 in stats.stats.values())
    return dict(((label, round(value, 2)) for label, value in parts.items()), total=round(total, 2))


def inventory_scenario(bench):  # pylint: disable=too-many-locals,too-many-statements
    """``ansible-inventory -i <file>.defender_devices.yml --list`` (plugins/inventory/devices.py) with
    missing_kbs over the emulator's generated fleet, the emulator in a process of its own: the
    documented example on the JSON export route (median of --inventory-runs), on the files route once,
    and a cached pair (jsonfile); the example before (every entry a template) --inventory-template-runs
    times. The emulator's CPU and peak RSS are measured per run too."""
    args = bench.args
    latency = args.latency_ms / 1000.0
    options = {'seed': args.seed, 'fleet': args.inventory_fleet, 'latency_ms': args.latency_ms,
               'token_latency_ms': args.latency_ms}
    state = os.path.join(args.export_cache, 'inventory-%d' % args.inventory_fleet)
    log('inventory: starting the emulator in its own process (fleet %d); the export is generated into %s unless it is '
        'there already' % (args.inventory_fleet, state))
    generated = not os.path.isdir(os.path.join(state, 'export'))
    started = time.monotonic()
    emu = EmulatorProcess(state, os.path.join(bench.work, 'inventory-emulator.log'), options)
    ansible_inventory = os.path.join(os.path.dirname(sys.executable), 'ansible-inventory')
    runs = []
    try:
        ready_s = time.monotonic() - started
        rss_ready, peak_ready = process_memory(emu.proc.pid)
        emulator = {'ready_s': round(ready_s, 1), 'export_generated': generated, 'cpu_s_at_ready': process_cpu(emu.proc.pid),
                    'rss_at_ready_mb': round(rss_ready, 1), 'peak_rss_at_ready_mb': round(peak_ready, 1)}
        log('emulator ready in %.1f s (pid %d, %s), RSS %.0f MB (peak %.0f MB)' % (
            ready_s, emu.info['pid'], 'the export generated' if generated else 'the export reused', rss_ready, peak_ready))
        summary = emu.admin('GET', 'export')
        truth = dict((k.lower(), v) for k, v in emu.admin('POST', 'export-truth', {}).items())
        device_ids = emulator_device_ids(emu)
        log('emulator: %d devices (GET /api/machines), export of %d records of %d devices, %d (device, KB) pairs'
            % (len(device_ids), summary['records'], summary['devices'], sum(len(v) for v in truth.values())))
        env = playbook_env(bench.collections, bench.work)
        env.update(emu.credentials_env())
        cache_dir = os.path.join(bench.work, 'inventory-cache')
        shutil.rmtree(cache_dir, ignore_errors=True)
        plan = [('json', 'json', index + 1, False) for index in range(args.inventory_runs)]
        plan += [('files', 'files', 1, False), ('cached', 'json', 1, False), ('cached', 'json', 2, False)]
        plan += [('templates', 'json', index + 1, False) for index in range(args.inventory_template_runs)]
        plan = [step for step in plan if step[0] in args.inventory_kinds]
        if args.inventory_profile:
            plan.append(('json', 'json', args.inventory_runs + 1, True))
        for kind, source, index, profile in plan:
            path = os.path.join(bench.work, 'inventory-%s.defender_devices.yml' % kind)
            with open(path, 'w') as handle:
                yaml.safe_dump(inventory_config(source, cache_dir if kind == 'cached' else None, templates=kind == 'templates'),
                               handle, sort_keys=False)
            name = 'inventory-%s-%d%s' % (kind, index, '-profile' if profile else '')
            output = os.path.join(bench.work, name + '.json')
            if os.path.exists(output):
                os.remove(output)
            command = [ansible_inventory, '-i', path, '--list', '--output', output]
            profile_path = os.path.join(bench.work, name + '.prof')
            if profile:
                command = [sys.executable, '-m', 'cProfile', '-o', profile_path] + command
            emu.admin('POST', 'reset')
            load_before = os.getloadavg()
            emulator_cpu = process_cpu(emu.proc.pid)
            peak_reset = reset_peak_rss(emu.proc.pid)
            emulator_rss_before = process_memory(emu.proc.pid)[0]
            run = run_measured(command, env, bench.work, os.path.join(bench.work, name + '.log'), args.timeout)
            emulator_cpu = process_cpu(emu.proc.pid) - emulator_cpu
            emulator_rss_after, emulator_peak = process_memory(emu.proc.pid)
            stats = emu.admin('GET', 'stats')
            run.update({'kind': kind, 'source': source, 'run': index, 'profiled': profile, 'log': name + '.log',
                        'loadavg_before': [round(v, 2) for v in load_before], 'loadavg_after': [round(v, 2) for v in os.getloadavg()],
                        'emulator_cpu_s': round(emulator_cpu, 2), 'emulator_rss_before_mb': round(emulator_rss_before, 1),
                        'emulator_rss_after_mb': round(emulator_rss_after, 1),
                        'emulator_peak_rss_mb': round(emulator_peak, 1) if peak_reset else None,
                        'api_requests': stats['api_requests'],
                        'api_by_route': dict((k, v) for k, v in stats['api_by_route'].items() if v),
                        'token_requests': stats['token_requests'], 'status_429': stats['status_counts'].get('429', 0),
                        'file_downloads': stats.get('file_downloads', 0),
                        'export_records_served': dict((k, v) for k, v in stats.get('export_records_served', {}).items() if v)})
            bounds = budget_bounds(run['api_by_route'], latency, args.max_concurrency)
            run.update({'min_s_under_budgets': bounds['per_api_s'], 'budget_bounds': bounds})
            listing = None
            if run['rc'] == 0 and os.path.exists(output):
                with open(output) as handle:
                    listing = json.load(handle)
            check = check_inventory(listing, device_ids, truth) if listing is not None else {'correct': False}
            run['check'] = check
            run['correct'] = bool(check['correct'])
            if kind == 'cached' and index == 2:
                run['correct'] = run['correct'] and run['api_requests'] == 0
            if not run['correct']:
                run['error_tail'] = run['output'][-3000:]
            if profile:
                run['top_functions'] = top_functions(profile_path)
                run['parts'] = profile_parts(profile_path)
            runs.append(strip(run))
            log('inventory %-9s %s: %7.2f s, %d hosts, %d missing_kb groups, %d calls %s, %d token(s), %d downloads, peak RSS '
                '%.0f MB (main %.0f MB), min. %.2f s under the budgets, emulator CPU %.1f s, RSS %.0f MB (peak %s MB), load %.1f%s'
                % (kind, 'profiled' if profile else 'run %d' % index, run['wall_s'], check.get('hosts', 0),
                   check.get('missing_kb_groups', 0), run['api_requests'], run['api_by_route'], run['token_requests'],
                   run['file_downloads'], run['peak_rss_mb'], run['peak_main_rss_mb'], bounds['per_api_s'], emulator_cpu,
                   emulator_rss_after, '%.0f' % emulator_peak if peak_reset else '?', load_before[0],
                   '' if run['correct'] else '  WRONG OR FAILED'))
            if profile:
                for label, seconds in run['parts'].items():
                    log('    %7.2f s cumulative  %s' % (seconds, label))
    finally:
        emu.stop()
    rows = []
    for kind, label in (('json', 'JSON export'), ('files', 'export files'), ('cached', 'cached'),
                        ('templates', 'JSON export, every entry a template (the example before)')):
        for index in ((1, 2) if kind == 'cached' else (None,)):
            measured = [r for r in runs if r['kind'] == kind and not r['profiled'] and (index is None or r['run'] == index)]
            if not measured:
                continue
            middle = sorted(measured, key=lambda r: r['wall_s'])[len(measured) // 2]
            rows.append({'kind': kind, 'label': label + ('' if index is None else (', first run' if index == 1 else ', second run')),
                         'source': middle['source'], 'runs': len(measured), 'walls_s': [r['wall_s'] for r in measured],
                         'median_wall_s': middle['wall_s'], 'devices': len(device_ids), 'hosts': middle['check'].get('hosts', 0),
                         'missing_kb_groups': middle['check'].get('missing_kb_groups', 0),
                         'api_requests': max(r['api_requests'] for r in measured), 'api_by_route': middle['api_by_route'],
                         'token_requests': max(r['token_requests'] for r in measured),
                         'file_downloads': middle['file_downloads'], 'peak_rss_mb': max(r['peak_rss_mb'] for r in measured),
                         'peak_main_rss_mb': max(r['peak_main_rss_mb'] for r in measured),
                         'emulator_cpu_s': middle['emulator_cpu_s'],
                         'emulator_peak_rss_mb': max(r['emulator_peak_rss_mb'] or 0 for r in measured) or None,
                         'min_s_under_budgets': middle['min_s_under_budgets'], 'all_correct': all(r['correct'] for r in measured)})
    return {'emulator': dict(options, process='its own (python -m mde_emulator --prepare-export)', **emulator),
            'export': dict((k, v) for k, v in summary.items() if k not in ('files', 'directory')),
            'devices': len(device_ids), 'expected_machine_pages': -(-len(device_ids) // MACHINES_PAGE),
            'expected_export_pages': -(-summary['records'] // 50000),
            'inventory': inventory_config('json'), 'inventory_templates': inventory_config('json', templates=True),
            'rows': rows, 'runs': runs}


# -- tables and targets -----------------------------------------------------------------------------

def main_table(rows):
    lines = ['| N | variant | median wall (s) | runs (s) | API calls | 429s | token requests | peak RSS (MB) | vs baseline | vs lower bound |',
             '|---:|---|---:|---|---:|---:|---:|---:|---:|---:|']
    for row in rows:
        bound = row['lower_bound']['total_s']
        base = row['variants'].get('baseline')
        for variant, data in row['variants'].items():
            speedup = '%.1fx faster' % (base['median_wall_s'] / data['median_wall_s']) if base and variant != 'baseline' else ''
            flag = '' if data['all_correct'] else ' (FAILED)'
            lines.append('| %d | %s%s | %.2f | %s | %d | %d | %d | %.0f | %s | %.2fx |' % (
                row['n'], variant, flag, data['median_wall_s'], ' / '.join('%.1f' % w for w in data['walls_s']),
                data['api_requests'], data['status_429'], data['token_requests'], data['peak_rss_mb'], speedup,
                data['median_wall_s'] / bound))
        lines.append('| %d | lower bound | %.2f | | %d | 0 | 1 | | | 1.00x |' % (row['n'], bound, row['n']))
    return '\n'.join(lines)


def rate_limit_table(scenario):
    bound = scenario['lower_bound']
    lines = ['N = %d, emulator limit %d calls / 60 s (sliding), collection at its default requests_per_minute; '
             'schedule bound %.2f s (pacer rule %.2f s), lower bound with token and empty playbook %.2f s'
             % (scenario['n'], scenario['budget_per_60s'], bound['schedule_s'], bound['schedule_pacer_rule_s'], bound['total_s']),
             '',
             '| variant | wall (s) | vs schedule bound | API calls | 429s | max calls in any 60 s | token requests |',
             '|---|---:|---:|---:|---:|---:|---:|']
    for data in scenario['variants']:
        lines.append('| %s%s | %.2f | %.3fx | %d | %d | %d | %d |' % (
            data['variant'], '' if data['all_correct'] else ' (FAILED)', data['median_wall_s'], data['ratio_to_schedule'],
            data['api_requests'], data['status_429'], data['max_in_any_60s'], data['token_requests']))
    return '\n'.join(lines)


def _duration(seconds):
    if seconds < 10:
        return '%.2f s' % seconds
    if seconds < 120:
        return '%.1f s' % seconds
    if seconds < 7200:
        return '%.1f min' % (seconds / 60.0)
    return '%.1f h' % (seconds / 3600.0)


def fleet_table(scenario):
    lines = ['| strategy | hosts | wall (s) | API calls | calls by route | token requests | peak RSS (MB) | '
             'main process RSS (MB) | min. time under Defender\'s budgets | result |',
             '|---|---:|---:|---:|---|---:|---:|---:|---:|---|']
    for row in scenario['rows']:
        routes = ', '.join('%s %d' % item for item in sorted(row['api_by_route'].items()))
        if not row.get('run', True):
            lines.append('| %s | %d | not run | %d | %s | | | | %s | computed |' % (
                row['strategy'], row['hosts'], row['api_requests'], routes, _duration(row['min_s_under_budgets'])))
            continue
        summary = row['report_summary'] or {}
        result = ('%d hosts reported, %d non-compliant' % (summary.get('hosts', 0), summary.get('noncompliant', 0))
                  if row['correct'] else 'FAILED')
        if 'hosts_matching_truth' in row and row['correct']:
            result += '; every host\'s KBs as in the export\'s truth'
        lines.append('| %s | %d | %.1f | %d | %s | %d | %.0f | %.0f | %s | %s |' % (
            row['strategy'], row['hosts'], row['wall_s'], row['api_requests'], routes, row['token_requests'],
            row['peak_rss_mb'], row.get('peak_main_rss_mb', 0), _duration(row['min_s_under_budgets']), result))
    return '\n'.join(lines)


def reader_table(scenario):
    lines = ['| route | records | runs (s) | median wall (s) | records/s | CPU (s) | records per CPU s | RSS before (MB) | '
             'peak RSS growth (MB) | calls | result |',
             '|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|']
    for data in scenario['summaries']:
        calls = ', '.join('%s %d' % item for item in sorted(data['api_by_route'].items()))
        if data['file_downloads']:
            calls += ', %d file downloads' % data['file_downloads']
        lines.append('| %s | %d | %s | %.2f | %.0f | %.2f | %.0f | %.0f | %.0f | %s | %s |' % (
            data['source'], data['records'], ' / '.join('%.1f' % w for w in data['walls_s']), data['median_wall_s'],
            data['median_records_per_s'], data['cpu_s_of_median'], data['records_per_cpu_s_of_median'], data['rss_before_mb'],
            data['max_rss_growth_mb'], calls, 'correct' if data['all_correct'] else 'FAILED'))
    return '\n'.join(lines)


def inventory_table(scenario):
    lines = ['| run | devices | runs (s) | median wall (s) | API calls | calls by route | token requests | peak RSS (MB) | '
             'main process RSS (MB) | emulator CPU (s) | emulator peak RSS (MB) | least time under Defender\'s budgets | hosts | '
             'missing_kb groups | result |',
             '|---|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|']
    for row in scenario['rows']:
        calls = ', '.join('%s %d' % item for item in sorted(row['api_by_route'].items())) or 'none'
        if row['file_downloads']:
            calls += ' (+%d downloads)' % row['file_downloads']
        lines.append('| %s | %d | %s | %.2f | %d | %s | %d | %.0f | %.0f | %.1f | %s | %s | %d | %d | %s |' % (
            row['label'], row['devices'], ' / '.join('%.1f' % w for w in row['walls_s']), row['median_wall_s'],
            row['api_requests'], calls, row['token_requests'], row['peak_rss_mb'], row['peak_main_rss_mb'],
            row.get('emulator_cpu_s') or 0, '%.0f' % row['emulator_peak_rss_mb'] if row.get('emulator_peak_rss_mb') else '',
            _duration(row['min_s_under_budgets']), row['hosts'], row['missing_kb_groups'],
            'correct' if row['all_correct'] else 'FAILED'))
    return '\n'.join(lines)


# defender.tvm.compliance at 1,000 hosts with role 1.1 (results/2026-11-27-2cpu-amd-epyc-24gb-fleet.json):
# the one-flow role must be no slower (5% allowed for noise).
FLEET_1000_BEFORE = {'software': 15.6, 'device': 54.4, 'device-ids': 36.8}


def targets(results):
    """The issue's targets, each with the numbers behind it."""
    found = []
    rows = dict((r['n'], r) for r in results.get('main', []))
    if 100 in rows and 'baseline' in rows[100]['variants']:
        row = rows[100]
        base = row['variants']['baseline']['median_wall_s']
        for variant in ('lookup', 'module'):
            if variant in row['variants']:
                wall = row['variants'][variant]['median_wall_s']
                found.append(('N=100 %s at least 10x faster than the baseline' % variant, base / wall >= 10,
                              '%.1fx (%.2f s vs %.2f s)' % (base / wall, wall, base)))
                found.append(('N=100 %s within 1.5x of the lower bound' % variant, wall / row['lower_bound']['total_s'] <= 1.5,
                              '%.2fx (%.2f s vs %.2f s)' % (wall / row['lower_bound']['total_s'], wall, row['lower_bound']['total_s'])))
    tokens = [(r['n'], v, d['token_requests']) for r in results.get('main', []) for v, d in r['variants'].items() if v != 'baseline']
    if tokens:
        found.append(('one token request per run, whatever N', all(t == 1 for dummy, dummy2, t in tokens),
                      ', '.join('N=%d %s: %d' % t for t in tokens)))
    if 10 in rows and 300 in rows:
        for variant in ('lookup', 'module'):
            if variant in rows[10]['variants'] and variant in rows[300]['variants']:
                growth = rows[300]['variants'][variant]['peak_rss_mb'] - rows[10]['variants'][variant]['peak_rss_mb']
                small, large = rows[10]['variants'][variant]['peak_rss_mb'], rows[300]['variants'][variant]['peak_rss_mb']
                found.append(('%s: controller RSS grows by <= 50 MB from N=10 to N=300' % variant, growth <= 50,
                              '%+.1f MB (%.0f -> %.0f MB)' % (growth, small, large)))
    scenario = results.get('rate_limit')
    if scenario:
        for data in scenario['variants']:
            found.append(('rate limit N=%d %s: zero 429s, within 10%% of the schedule bound' % (scenario['n'], data['variant']),
                          data['status_429'] == 0 and data['ratio_to_schedule'] <= 1.1 and data['all_correct'],
                          '%d x 429, %.2f s = %.3fx of %.2f s' % (data['status_429'], data['median_wall_s'], data['ratio_to_schedule'],
                                                                  scenario['lower_bound']['schedule_s'])))
    fleet = results.get('fleet')
    if fleet:
        software = [r for r in fleet['rows'] if r['strategy'] == 'software']
        if len(software) > 1:
            found.append(('fleet: software strategy API calls do not depend on the host count',
                          len(set(r['api_requests'] for r in software)) == 1,
                          ', '.join('%d hosts: %d' % (r['hosts'], r['api_requests']) for r in software)))
        by_id = [r for r in fleet['rows'] if r['strategy'] == 'device-ids']
        if by_id:
            found.append(('fleet: device strategy with device IDs makes one API call per host',
                          all(r['api_requests'] == r['hosts'] for r in by_id),
                          ', '.join('%d hosts: %d' % (r['hosts'], r['api_requests']) for r in by_id)))
        for strategy in ('export', 'export-files'):
            rows = [r for r in fleet['rows'] if r['strategy'] == strategy]
            if len(rows) > 1:
                found.append(('fleet: %s strategy API calls do not depend on the host count' % strategy,
                              len(set(r['api_requests'] for r in rows)) == 1 and all(r['correct'] for r in rows),
                              ', '.join('%d hosts: %d' % (r['hosts'], r['api_requests']) for r in rows)))
        fleet = dict(fleet, rows=[r for r in fleet['rows'] if r.get('run', True)])
        for row in fleet['rows']:
            if row['hosts'] == 1000:
                found.append(('fleet %s strategy, %d hosts, report mode, under 2 minutes' % (row['strategy'], row['hosts']),
                              row['wall_s'] < 120 and row['correct'], '%.1f s' % row['wall_s']))
            if row['hosts'] == 1000 and row['strategy'] in FLEET_1000_BEFORE:
                before = FLEET_1000_BEFORE[row['strategy']]
                found.append(('fleet %s strategy, 1,000 hosts: no slower than role 1.1 (%.1f s)' % (row['strategy'], before),
                              row['wall_s'] <= before * 1.05 and row['correct'], '%.1f s' % row['wall_s']))
            if 10000 <= row['hosts'] < 100000 and row['strategy'].startswith('export'):
                found.append(('fleet %s strategy, %d hosts, report mode, under 90 s end to end' % (row['strategy'], row['hosts']),
                              row['wall_s'] < 90 and row['correct'], '%.1f s, %d calls' % (row['wall_s'], row['api_requests'])))
            if row['hosts'] >= 100000 and row['strategy'].startswith('export'):
                found.append(('fleet %s strategy, %d hosts, report mode, under 3 minutes end to end' % (row['strategy'], row['hosts']),
                              row['wall_s'] < 180 and row['correct'], '%.1f s, %d calls' % (row['wall_s'], row['api_requests'])))
                found.append(('fleet %s strategy, %d hosts: the main process under 1.5 GB RSS' % (row['strategy'], row['hosts']),
                              row['peak_main_rss_mb'] < 1536 and row['correct'],
                              '%.0f MB (main process), %.0f MB summed over the forks' % (row['peak_main_rss_mb'], row['peak_rss_mb'])))
                smaller = [r for r in fleet['rows'] if r['strategy'] == row['strategy'] and r['hosts'] == 10000]
                if smaller:
                    ratio = (row['wall_s'] / row['hosts']) / (smaller[0]['wall_s'] / smaller[0]['hosts'])
                    found.append(('fleet %s strategy: time per host at %d hosts within 1.3x of that at 10,000'
                                  % (row['strategy'], row['hosts']), ratio <= 1.3 and row['correct'],
                                  '%.2fx (%.2f ms vs %.2f ms per host)' % (
                                      ratio, 1000.0 * row['wall_s'] / row['hosts'],
                                      1000.0 * smaller[0]['wall_s'] / smaller[0]['hosts'])))
            if row['hosts'] >= 10000 and row['strategy'] == 'software':
                found.append(('fleet software strategy, %d hosts, report mode, under 60 s' % row['hosts'],
                              row['wall_s'] < 60 and row['correct'], '%.1f s, %d calls' % (row['wall_s'], row['api_requests'])))
    reader = results.get('export_reader')
    for data in (reader or {}).get('summaries', []):
        if data['records'] < 1000000:
            continue  # the floors are set at 1,000,000 records (--quick reads a small export)
        found.append(('export reader, %s route, %d records: at least 30,000 records a second on one core' % (data['source'], data['records']),
                      data['median_records_per_s'] >= 30000 and data['all_correct'],
                      '%.0f records/s (%.2f s wall, %.2f s CPU: %.0f records per CPU second)' % (
                          data['median_records_per_s'], data['median_wall_s'], data['cpu_s_of_median'], data['records_per_cpu_s_of_median'])))
        found.append(('export reader, %s route, %d records: peak RSS growth under 250 MB' % (data['source'], data['records']),
                      data['max_rss_growth_mb'] < 250 and data['all_correct'],
                      '+%.0f MB (%.0f MB before the read)' % (data['max_rss_growth_mb'], data['rss_before_mb'])))
    inventory = results.get('inventory')
    if inventory:
        rows = dict((r['label'], r) for r in inventory['rows'])
        main_row = rows.get('JSON export')
        floor = 180 if inventory['devices'] >= 100000 else 60 if inventory['devices'] >= 10000 else None
        if main_row and floor:
            found.append(('inventory: ansible-inventory --list over %d devices with missing_kbs (JSON export) under %d s'
                          % (inventory['devices'], floor), main_row['median_wall_s'] < floor and main_row['all_correct'],
                          '%.1f s (median of %d), %d calls, peak RSS %.0f MB' % (
                              main_row['median_wall_s'], main_row['runs'], main_row['api_requests'], main_row['peak_rss_mb'])))
        for row in inventory['rows']:
            if row['kind'] in ('json', 'files'):
                pages = row['api_by_route'].get('machine_list', 0)
                others = dict((k, v) for k, v in row['api_by_route'].items() if k != 'machine_list')
                export_ok = (others == {'software_vulnerabilities_by_machine': inventory['expected_export_pages']}
                             if row['kind'] == 'json' else others == {'software_vulnerabilities_export': 1})
                found.append(('inventory (%s): API calls only the device list\'s pages and the export\'s' % row['label'],
                              pages == inventory['expected_machine_pages'] and export_ok and row['token_requests'] == 1,
                              '%d devices: machine_list %d (%d expected), %s, %d token(s)' % (
                                  inventory['devices'], pages, inventory['expected_machine_pages'],
                                  ', '.join('%s %d' % i for i in sorted(others.items())), row['token_requests'])))
        second = rows.get('cached, second run')
        if second:
            found.append(('inventory: a cached second run makes zero API calls', second['api_requests'] == 0 and second['all_correct'],
                          '%d calls, %d token requests, %.1f s'
                          % (second['api_requests'], second['token_requests'], second['median_wall_s'])))
    return [{'target': t, 'met': bool(m), 'evidence': e} for t, m, e in found]


# -- machine and entry point ------------------------------------------------------------------------

def machine_info():
    model = 'unknown'
    with open('/proc/cpuinfo') as handle:
        for line in handle:
            if line.startswith('model name'):
                model = line.split(':', 1)[1].strip()
                break
    memory = 0
    with open('/proc/meminfo') as handle:
        for line in handle:
            if line.startswith('MemTotal:'):
                memory = int(line.split()[1]) * 1024
    import ansible.release  # pylint: disable=import-outside-toplevel
    import msal  # pylint: disable=import-outside-toplevel
    import requests  # pylint: disable=import-outside-toplevel
    return {'nproc': len(os.sched_getaffinity(0)), 'cpu_model': model, 'memory_gib': round(memory / 1024.0 ** 3, 1),
            'kernel': platform.release(), 'python': platform.python_version(), 'ansible_core': ansible.release.__version__,
            'msal': msal.__version__, 'requests': requests.__version__}


def git_commit():
    """The commit measured, with ``+dirty`` when the working tree differs from it (benchmarks/ aside)."""
    try:
        head = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, check=True, stdout=subprocess.PIPE,
                              universal_newlines=True).stdout.strip()
        status = subprocess.run(['git', 'status', '--porcelain', '--', '.', ':!benchmarks'], cwd=ROOT, check=True,
                                stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ('+dirty' if status else '')


def machine_slug(info):
    cpu = re.sub(r'[^a-z0-9]+', '-', info['cpu_model'].lower()).strip('-')[:30].strip('-')
    return '%dcpu-%s-%dgb' % (info['nproc'], cpu, round(info['memory_gib']))


def _sizes(text):
    return [int(v) for v in text.split(',') if v]


def _names(text):
    return [v for v in text.split(',') if v]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='N=10 only, 1 run, fleet of 10 hosts, no rate-limit scenario')
    parser.add_argument('--sizes', type=_sizes, default=[10, 100, 300], help='software ID counts (default 10,100,300)')
    parser.add_argument('--runs', type=int, default=3, help='runs per measurement; the median is reported (default 3)')
    parser.add_argument('--variants', type=_names, default=list(VARIANTS), help='baseline,lookup,module')
    parser.add_argument('--latency-ms', type=float, default=150.0, help='emulated latency of every call (default 150)')
    parser.add_argument('--budget', type=int, default=100,
                        help='the emulator\'s calls per 60 s sliding window in the main scenario, and the collection\'s '
                             'requests_per_minute (default 100, the collection\'s default; 0: none)')
    parser.add_argument('--max-concurrency', type=int, default=8, help='the collection\'s max_concurrency, for the bound (default 8)')
    parser.add_argument('--scenarios', type=_names, default=['main', 'rate-limit', 'fleet', 'export-reader', 'inventory'],
                        help='main,rate-limit,fleet,export-reader,inventory')
    parser.add_argument('--rate-limit-n', type=int, default=250)
    parser.add_argument('--rate-limit-runs', type=int, default=1)
    parser.add_argument('--rate-limit-variants', type=_names, default=['lookup', 'module'])
    parser.add_argument('--fleet-sizes', type=_sizes, default=[10, 200, 1000])
    parser.add_argument('--fleet-strategies', type=_names, default=['software', 'device', 'device-ids', 'export'],
                        help='software,device,device-ids,export,export-files (device-ids: the device strategy with device '
                             'IDs in the inventory; export: the export strategy on JSON pages, export-files: on the files)')
    parser.add_argument('--fleet-device-max', type=int, default=1000,
                        help='run the device strategies up to this many hosts; above it only their calls and the least '
                             'time they need under the budgets are computed (default 1000)')
    parser.add_argument('--reader-fleet', type=int, default=50000,
                        help='export reader: devices of the generated fleet (default 50000)')
    parser.add_argument('--reader-findings-per-device', type=int, default=20,
                        help='export reader: records per device (default 20: 50,000 x 20 = 1,000,000 records; 0: as drawn)')
    parser.add_argument('--reader-export-parts', type=int, default=8, help='export reader: part files of the files route (default 8)')
    parser.add_argument('--reader-sources', type=_names, default=['json', 'files'], help='json,files')
    parser.add_argument('--reader-runs', type=int, default=3, help='export reader: measured reads per route (default 3)')
    parser.add_argument('--reader-page-size', type=int, default=50000, help='export reader: pageSize of the JSON route (default 50000)')
    parser.add_argument('--reader-profile', action='store_true',
                        help='export reader: one more read per route under cProfile; the top functions go to the JSON')
    parser.add_argument('--export-cache', default=os.path.join(ROOT, '.work', 'bench-export-cache'),
                        help='the export reader emulator\'s state dir parent: the generated export is kept there and '
                             'reused (its directory is named after the data\'s fingerprint); default .work/bench-export-cache')
    parser.add_argument('--inventory-fleet', type=int, default=10000,
                        help='inventory: devices of the generated fleet (default 10000; the emulator adds its seeded ones)')
    parser.add_argument('--inventory-kinds', type=_names, default=['json', 'files', 'cached', 'templates'],
                        help='inventory: which runs (default json,files,cached,templates; --inventory-profile adds its own)')
    parser.add_argument('--inventory-template-runs', type=int, default=1,
                        help='inventory: runs of the example before (every constructed entry a template), for the comparison '
                             '(default 1; 0: none)')
    parser.add_argument('--inventory-runs', type=int, default=3,
                        help='inventory: ansible-inventory --list runs on the JSON export route; the median is reported (default 3)')
    parser.add_argument('--inventory-profile', action='store_true',
                        help='inventory: one more JSON-route run under cProfile; the top functions go to the JSON')
    parser.add_argument('--task-times', action='store_true',
                        help='record how long each task takes (benchmarks/callback_plugins/task_times.py) in the JSON')
    parser.add_argument('--seed', type=int, default=20240213)
    parser.add_argument('--timeout', type=float, default=2400, help='seconds before one ansible-playbook run is killed')
    parser.add_argument('--collections-path',
                        help='use this ANSIBLE_COLLECTIONS_PATH (holding defender.tvm) instead of mirroring the repository')
    parser.add_argument('--work-dir', default=os.path.join(ROOT, '.work', 'bench'), help='scratch space (default .work/bench)')
    parser.add_argument('--note', help='a note kept in the JSON (e.g. what else ran on the machine)')
    parser.add_argument('--output', help='the JSON file to write (default benchmarks/results/<date>-<machine>.json)')
    args = parser.parse_args(argv)
    # The runs' paths are given to processes started in the work dir: a relative --work-dir would not hold there.
    args.work_dir = os.path.abspath(args.work_dir)
    if args.quick:
        args.sizes, args.runs, args.fleet_sizes = [10], 1, [10]
        args.reader_fleet, args.reader_runs = 2000, 1
        args.inventory_fleet, args.inventory_runs = 200, 1
        args.scenarios = [s for s in args.scenarios if s != 'rate-limit']
    needed_software = max(args.sizes + [args.rate_limit_n if 'rate-limit' in args.scenarios else 0])
    args.extra_software = max(needed_software, 10)
    # The fleet scenario's hosts are devices of the emulator's generated fleet (fleet.py), every one
    # of them in the vulnerability export; the largest host count is the fleet's size.
    args.fleet_devices = max(args.fleet_sizes) if 'fleet' in args.scenarios else 0
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = datetime.datetime.now()
    info = machine_info()
    log('machine: %s' % json.dumps(info))
    shutil.rmtree(args.work_dir, ignore_errors=True)
    os.makedirs(args.work_dir)
    bench = Bench(args, args.work_dir)
    # The tree is shared with other work: which reader was measured, exactly.
    measured = {}
    for name in ('plugins/module_utils/_export.py', 'plugins/module_utils/_client.py', 'plugins/module_utils/_transport.py',
                 'plugins/inventory/devices.py', 'plugins/module_utils/_devices.py'):
        path = os.path.join(bench.collections, 'ansible_collections', 'defender', 'tvm', name)
        if os.path.exists(path):
            with open(path, 'rb') as handle:
                measured[name] = hashlib.sha1(handle.read()).hexdigest()
    results = {'started': started.isoformat(timespec='seconds'), 'machine': info, 'commit': git_commit(),
               'settings': {'latency_ms': args.latency_ms, 'token_latency_ms': args.latency_ms, 'budget_per_60s': args.budget,
                            'max_concurrency': args.max_concurrency, 'runs': args.runs, 'seed': args.seed,
                            'sizes': args.sizes, 'emulator': 'in the harness process, 127.0.0.1',
                            'collections_path': args.collections_path or 'the repository, mirrored by scripts/layout.py',
                            'fleet_devices': args.fleet_devices, 'note': args.note, 'measured_files_sha1': measured,
                            'loadavg_at_start': [round(v, 2) for v in os.getloadavg()],
                            'rss': 'peak of the RSS summed over the ansible-playbook process and all its forks, sampled every 50 ms '
                                   '(PSS and the largest single process are in the runs)'}}
    try:
        parts = lower_bound_parts(bench)
        results['lower_bound_parts'] = parts
        log('empty ansible-playbook %.2f s, token round trip %.3f s' % (parts['empty_playbook_s'], parts['token_round_trip_s']))
        if 'main' in args.scenarios:
            results['main'] = main_scenario(bench, parts)
        if 'rate-limit' in args.scenarios:
            results['rate_limit'] = rate_limit_scenario(bench, parts)
        if 'fleet' in args.scenarios:
            results['fleet'] = fleet_scenario(bench)
        if 'export-reader' in args.scenarios:
            results['export_reader'] = export_reader_scenario(bench)
        if 'inventory' in args.scenarios:
            results['inventory'] = inventory_scenario(bench)
    finally:
        bench.close()
    results['finished'] = datetime.datetime.now().isoformat(timespec='seconds')
    results['settings']['loadavg_at_end'] = [round(v, 2) for v in os.getloadavg()]
    results['targets'] = targets(results)

    print()
    print('Machine: %(nproc)d x %(cpu_model)s, %(memory_gib)s GiB, Python %(python)s, ansible-core %(ansible_core)s' % info)
    print('Emulator: %.0f ms per call (token endpoint too), budget %s calls / 60 s; empty ansible-playbook %.2f s, '
          'token round trip %.3f s' % (args.latency_ms, args.budget or 'no', parts['empty_playbook_s'], parts['token_round_trip_s']))
    if 'main' in results:
        print('\n' + main_table(results['main']))
    if 'rate_limit' in results:
        print('\n' + rate_limit_table(results['rate_limit']))
    if 'fleet' in results:
        print('\nFleet: defender.tvm.compliance, report mode, %d software IDs (software strategy)\n' % len(results['fleet']['software_ids']))
        print(fleet_table(results['fleet']))
    if 'export_reader' in results:
        print('\nExport reader: %d records of %d devices, each route read in a process of its own\n'
              % (results['export_reader']['export']['records'], results['export_reader']['export']['devices']))
        print(reader_table(results['export_reader']))
    if 'inventory' in results:
        inventory = results['inventory']
        print('\nInventory plugin: ansible-inventory --list, missing_kbs, %d devices, export of %d records; the emulator in a '
              'process of its own\n' % (inventory['devices'], inventory['export']['records']))
        print(inventory_table(inventory))
    print('\nTargets:')
    for target in results['targets']:
        print('  [%s] %s: %s' % ('met' if target['met'] else 'MISSED', target['target'], target['evidence']))

    name = '%s-%s%s.json' % (started.strftime('%Y-%m-%d'), machine_slug(info), '-quick' if args.quick else '')
    output = args.output or os.path.join(HERE, 'results', name)
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, 'w') as handle:
        json.dump(results, handle, indent=1, sort_keys=True)
        handle.write('\n')
    print('\nResults: %s' % os.path.relpath(output, os.getcwd()))
    failed = any(not d['all_correct'] for r in results.get('main', []) for d in r['variants'].values())
    failed = failed or any(not d['all_correct'] for d in (results.get('rate_limit') or {}).get('variants', []))
    failed = failed or any(not r['correct'] for r in (results.get('fleet') or {}).get('rows', []))
    failed = failed or any(not r['correct'] for r in (results.get('export_reader') or {}).get('runs', []))
    failed = failed or any(not r['correct'] for r in (results.get('inventory') or {}).get('runs', []))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
