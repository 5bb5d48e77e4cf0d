# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One read of the vulnerability export, measured, in a process of its own (run by benchmarks/run.py).

It does what ``defender.tvm.device_missing_kbs_info`` does, without the AnsiballZ wrapper: the
shared options (``_options.OPTIONS``) resolved from the ``MDE_*`` environment as the module's
``env_fallback`` resolves them, ``Settings.from_adapter``, a ``DefenderClient``, then
``_export.read_export(client, source, page_size=...)`` over HTTPS to the emulator, which runs in
another process. Prints one JSON line:

* ``wall_s`` and ``cpu_s`` (user + system time of this process) of ``read_export`` alone: the
  token request, every call, the download, the decoding and the aggregation;
* ``rss_before_mb`` (the RSS just before the read, imports and client done), ``peak_rss_mb`` (the
  kernel's high-water mark, ``ru_maxrss``) and their difference;
* ``records_read``, ``devices`` and ``digest``: the SHA-1 of the sorted ``device kb count`` lines of
  every device with a KB, which the harness compares with the emulator's ``export_truth``.

With ``--profile FILE`` the read runs under cProfile and the stats go to FILE (the timings are
then the profiler's, not the reader's).
"""

from __future__ import absolute_import, division, print_function

import argparse
import hashlib
import json
import os
import resource
import sys
import time

MB = 1024.0 * 1024.0


def current_rss():
    with open('/proc/self/statm') as handle:
        return int(handle.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def digest(devices):
    lines = sorted('%s %s %d' % (d['device_id'], kb['id'], kb['cve_addressed']) for d in devices for kb in d['missing_kbs'])
    return len(lines), hashlib.sha1('\n'.join(lines).encode('utf-8')).hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--collections', required=True, help='a path holding ansible_collections/defender/tvm')
    parser.add_argument('--source', choices=['json', 'files'], required=True)
    parser.add_argument('--page-size', type=int, default=50000)
    parser.add_argument('--profile', help='write cProfile stats of the read to this file')
    args = parser.parse_args()
    sys.path.insert(0, args.collections)

    # pylint: disable=import-outside-toplevel
    from ansible_collections.defender.tvm.plugins.module_utils._client import DefenderClient
    from ansible_collections.defender.tvm.plugins.module_utils._export import read_export
    from ansible_collections.defender.tvm.plugins.module_utils._options import OPTIONS, OptionAdapter, Settings

    # The module's argument spec falls back to the first set variable of each option's env list.
    values = {}
    for name, spec in OPTIONS.items():
        for variable in spec.get('env', ()):
            if os.environ.get(variable):
                values[name] = os.environ[variable]
                break
    warnings = []
    client = DefenderClient(Settings.from_adapter(OptionAdapter.from_dict(values, os.environ)), warn=warnings.append)

    rss_before = current_rss()
    cpu_start, wall_start = cpu_seconds(), time.monotonic()
    if args.profile:
        import cProfile
        profiler = cProfile.Profile()
        result = profiler.runcall(read_export, client, args.source, page_size=args.page_size)
        profiler.dump_stats(args.profile)
    else:
        result = read_export(client, args.source, page_size=args.page_size)
    wall = time.monotonic() - wall_start
    cpu = cpu_seconds() - cpu_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0
    client.close()

    pairs, sha = digest(result['devices'])
    print('EXPORT_READ ' + json.dumps({
        'source': args.source, 'page_size': args.page_size, 'wall_s': round(wall, 3), 'cpu_s': round(cpu, 3),
        'records_read': result['records_read'], 'devices': len(result['devices']),
        'devices_with_kbs': sum(1 for d in result['devices'] if d['missing_kbs']),
        'kb_pairs': pairs, 'digest': sha, 'distinct_kbs': len(result['missing_kbs']),
        'generated_time': result['generated_time'],
        'records_per_s': round(result['records_read'] / wall, 1) if wall else None,
        'records_per_cpu_s': round(result['records_read'] / cpu, 1) if cpu else None,
        'rss_before_mb': round(rss_before / MB, 1), 'peak_rss_mb': round(peak / MB, 1),
        'rss_growth_mb': round((peak - rss_before) / MB, 1), 'warnings': warnings,
        'api_requests': client.transport.api_requests, 'profiled': bool(args.profile)}), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
