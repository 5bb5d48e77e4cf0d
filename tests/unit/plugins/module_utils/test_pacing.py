# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import random

import pytest
import threading
import time

from ansible_collections.defender.tvm.plugins.module_utils._pacing import RatePacer


class FakeClockPacer(RatePacer):
    """Waiting advances a fake clock instead of sleeping (single-threaded tests only)."""

    def __init__(self, per_minute, window=60.0):
        self.now = 0.0
        super(FakeClockPacer, self).__init__(per_minute, window=window, clock=lambda: self.now)

    def _wait(self, seconds):
        assert seconds is not None, 'a single thread would wait forever'
        self.now += max(seconds, 0)


def run_sequential(pacer, count, latency):
    """Send ``count`` requests one after another; return (send, complete) times."""
    intervals = []
    for dummy in range(count):
        pacer.acquire()
        sent = pacer.now
        pacer.now += latency
        pacer.release()
        intervals.append((sent, pacer.now))
    return intervals


def max_overlapping(intervals, window):
    """The most requests whose [send, complete] touches one window: the worst case for any arrival times."""
    worst = 0
    for start, dummy in intervals:
        for a in (start - window, start):
            worst = max(worst, sum(1 for s, c in intervals if s < a + window and c >= a))
    return worst


def test_up_to_the_budget_nothing_waits():
    pacer = FakeClockPacer(100)
    intervals = run_sequential(pacer, 100, 0.15)
    assert intervals[-1][1] == pytest.approx(100 * 0.15)
    assert pacer.waited == 0


def test_the_next_call_waits_a_window_after_the_first_response():
    pacer = FakeClockPacer(3)
    intervals = run_sequential(pacer, 4, 1.0)
    # the 1st request completed at t=1, so the 4th may go at t=61, not earlier
    assert intervals[3][0] == 61.0


def test_250_calls_at_100_per_minute_follow_the_schedule_bound():
    pacer = FakeClockPacer(100)
    intervals = run_sequential(pacer, 250, 0.15)
    assert max_overlapping(intervals, 60.0) <= 100
    # 3 bursts: ~0-15 s, ~60-75 s, ~120-127.5 s
    assert 120 <= intervals[-1][1] <= 121 + 100 * 0.15


def test_unpaced_never_waits():
    pacer = FakeClockPacer(0)
    run_sequential(pacer, 500, 0.01)
    assert pacer.waited == 0


def test_pause_holds_everyone_until_the_deadline():
    pacer = FakeClockPacer(0)
    pacer.pause_until(30.0)
    pacer.acquire()
    assert pacer.now == 30.0
    pacer.release()


def test_concurrent_workers_never_exceed_the_budget_in_any_window():
    """A safety property under real threads (a small window keeps it short): whatever the
    arrival time inside [send, response], no window holds more than the budget."""
    window, budget = 0.3, 5
    pacer = RatePacer(budget, window=window)
    intervals, lock = [], threading.Lock()
    rng = random.Random(7)
    latencies = [rng.uniform(0.0, 0.05) for dummy in range(40)]

    def worker(latency):
        pacer.acquire()
        sent = time.monotonic()
        time.sleep(latency)  # the simulated request, not synchronisation
        done = time.monotonic()
        pacer.release()
        with lock:
            intervals.append((sent, done))

    threads = [threading.Thread(target=worker, args=(lat,)) for lat in latencies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(intervals) == 40
    assert max_overlapping(intervals, window) <= budget
