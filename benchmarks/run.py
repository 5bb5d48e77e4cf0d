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
* fleet: ``defender.tvm.compliance`` (report mode) over inventories of simulated hosts, for the
  ``software`` and ``device`` strategies.

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
    starts = []
    for index in range(calls):
        start = 0.0
        if index >= concurrency:
            start = max(start, starts[index - concurrency] + latency)
        if budget and index >= budget:
            start = max(start, starts[index - budget] + window + (latency if rule == 'pacer' else 0.0))
        starts.append(start)
    return starts[-1] + latency if starts else 0.0


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
        log('building the emulator dataset (%d extra software, %d extra machines)'
            % (args.extra_software, args.extra_machines))
        self.emu = Emulator(os.path.join(work, 'emulator'), seed=args.seed, extra_software=args.extra_software,
                            extra_machines=args.extra_machines, **self.start_faults)
        self.emu.start()
        log('emulator at %s (in this process)' % self.emu.url)
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


def fleet_scenario(bench):
    args = bench.args
    # extra_machines adds srv-1001 ... ws-NNNN (numbered from 1001), all in Defender under their FQDN.
    synthetic = [(re.match(r'^(?:srv|ws)-(\d{4,})\.', m['computerDnsName']), m['computerDnsName'])
                 for m in bench.emu.data['machines'].values()]
    names = sorted(name for match, name in synthetic if match and int(match.group(1)) > 1000)
    device_ids = dict((m['computerDnsName'], m['id']) for m in bench.emu.data['machines'].values())
    software = fleet_software(bench)
    rows = []
    for strategy in args.fleet_strategies:
        for count in args.fleet_sizes:
            if count > len(names):
                raise RuntimeError('the fleet scenario needs %d emulated machines, --extra-machines gives %d' % (count, len(names)))
            hosts = dict((h, dict(UNREACHABLE_WINDOWS)) for h in names[:count])
            if strategy == 'device-ids':
                # the device strategy with each host's Defender device ID in the inventory (as a dynamic
                # inventory would give it): no name lookups
                for name, host_vars in hosts.items():
                    host_vars['kb_patching_device_name'] = device_ids[name]
            inventory = os.path.join(bench.work, 'fleet-%s-%d.inventory.yml' % (strategy, count))
            with open(inventory, 'w') as handle:
                yaml.safe_dump({'all': {'children': {'windows': {'hosts': hosts}}}}, handle)
            report_dir = os.path.join(bench.work, 'fleet-%s-%d-reports' % (strategy, count))
            shutil.rmtree(report_dir, ignore_errors=True)
            variables = {'kb_patching_strategy': 'device' if strategy == 'device-ids' else strategy,
                         'kb_patching_report_dir': report_dir}
            if strategy == 'software':
                variables['kb_patching_software_ids'] = software
            bench.prepare()
            # The fleet runs without a call budget on the emulator (the device strategy needs two calls per host);
            # the collection is told so. The budget's cost is given as a bound instead.
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
            run['report_summary'] = report and report['summary']
            if not run['correct']:
                run['error_tail'] = run['output'][-3000:]
            calls = run['api_requests']
            run.update({'strategy': strategy, 'hosts': count, 'software_ids': len(software) if strategy == 'software' else 0,
                        'min_s_under_100_per_min': round(schedule_bound(calls, args.latency_ms / 1000.0, args.max_concurrency,
                                                                        100), 1)})
            rows.append(strip(run))
            log('fleet %-8s %5d hosts: %7.2f s, %d calls %s, %d token(s), peak RSS %.0f MB, rc %d%s'
                % (strategy, count, run['wall_s'], calls, run['api_by_route'], run['token_requests'], run['peak_rss_mb'],
                   run['rc'], '' if run['correct'] else '  FAILED'))
            for entry in run.get('task_times', [])[:6]:
                log('    %7.2f s  %s' % (entry['s'], entry['task']))
    return {'software_ids': software, 'rows': rows}


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


def fleet_table(scenario):
    lines = ['| strategy | hosts | wall (s) | API calls | calls by route | token requests | peak RSS (MB) | '
             'min. time under 100 calls/min (s) | result |',
             '|---|---:|---:|---:|---|---:|---:|---:|---|']
    for row in scenario['rows']:
        routes = ', '.join('%s %d' % item for item in sorted(row['api_by_route'].items()))
        summary = row['report_summary'] or {}
        result = ('%d hosts reported, %d non-compliant' % (summary.get('hosts', 0), summary.get('noncompliant', 0))
                  if row['correct'] else 'FAILED')
        lines.append('| %s | %d | %.1f | %d | %s | %d | %.0f | %.1f | %s |' % (
            row['strategy'], row['hosts'], row['wall_s'], row['api_requests'], routes, row['token_requests'],
            row['peak_rss_mb'], row['min_s_under_100_per_min'], result))
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
        for row in fleet['rows']:
            if row['hosts'] == 1000:
                found.append(('fleet %s strategy, %d hosts, report mode, under 2 minutes' % (row['strategy'], row['hosts']),
                              row['wall_s'] < 120 and row['correct'], '%.1f s' % row['wall_s']))
            if row['hosts'] == 1000 and row['strategy'] in FLEET_1000_BEFORE:
                before = FLEET_1000_BEFORE[row['strategy']]
                found.append(('fleet %s strategy, 1,000 hosts: no slower than role 1.1 (%.1f s)' % (row['strategy'], before),
                              row['wall_s'] <= before * 1.05 and row['correct'], '%.1f s' % row['wall_s']))
            if row['hosts'] >= 10000 and row['strategy'] == 'software':
                found.append(('fleet software strategy, %d hosts, report mode, under 60 s' % row['hosts'],
                              row['wall_s'] < 60 and row['correct'], '%.1f s, %d calls' % (row['wall_s'], row['api_requests'])))
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
    parser.add_argument('--scenarios', type=_names, default=['main', 'rate-limit', 'fleet'], help='main,rate-limit,fleet')
    parser.add_argument('--rate-limit-n', type=int, default=250)
    parser.add_argument('--rate-limit-runs', type=int, default=1)
    parser.add_argument('--rate-limit-variants', type=_names, default=['lookup', 'module'])
    parser.add_argument('--fleet-sizes', type=_sizes, default=[10, 200, 1000])
    parser.add_argument('--fleet-strategies', type=_names, default=['software', 'device', 'device-ids'],
                        help='software,device,device-ids (the device strategy with device IDs in the inventory)')
    parser.add_argument('--task-times', action='store_true',
                        help='record how long each task takes (benchmarks/callback_plugins/task_times.py) in the JSON')
    parser.add_argument('--seed', type=int, default=20240213)
    parser.add_argument('--timeout', type=float, default=2400, help='seconds before one ansible-playbook run is killed')
    parser.add_argument('--collections-path',
                        help='use this ANSIBLE_COLLECTIONS_PATH (holding defender.tvm) instead of mirroring the repository')
    parser.add_argument('--work-dir', default=os.path.join(ROOT, '.work', 'bench'), help='scratch space (default .work/bench)')
    parser.add_argument('--output', help='the JSON file to write (default benchmarks/results/<date>-<machine>.json)')
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.runs, args.fleet_sizes = [10], 1, [10]
        args.scenarios = [s for s in args.scenarios if s != 'rate-limit']
    needed_software = max(args.sizes + [args.rate_limit_n if 'rate-limit' in args.scenarios else 0])
    args.extra_software = max(needed_software, 10)
    args.extra_machines = max(args.fleet_sizes) if 'fleet' in args.scenarios else 0
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = datetime.datetime.now()
    info = machine_info()
    log('machine: %s' % json.dumps(info))
    shutil.rmtree(args.work_dir, ignore_errors=True)
    os.makedirs(args.work_dir)
    bench = Bench(args, args.work_dir)
    results = {'started': started.isoformat(timespec='seconds'), 'machine': info, 'commit': git_commit(),
               'settings': {'latency_ms': args.latency_ms, 'token_latency_ms': args.latency_ms, 'budget_per_60s': args.budget,
                            'max_concurrency': args.max_concurrency, 'runs': args.runs, 'seed': args.seed,
                            'sizes': args.sizes, 'emulator': 'in the harness process, 127.0.0.1',
                            'collections_path': args.collections_path or 'the repository, mirrored by scripts/layout.py',
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
    finally:
        bench.close()
    results['finished'] = datetime.datetime.now().isoformat(timespec='seconds')
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
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
