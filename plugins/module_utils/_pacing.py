# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Client-side pacing under the Defender API's per-minute call budget.

FOR INTERNAL COLLECTION USE ONLY; the API may change in any release.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import threading
import time


class RatePacer:
    """A sliding-window limiter: no 60-second window holds more than ``per_minute`` requests.

    The server counts a request when it arrives, the client can only see when it sends. So a
    request occupies its slot from the moment it is sent until ``window`` seconds after its
    response came back (the response is proof that it had arrived). Any two requests that share
    a slot are then more than ``window`` seconds apart at the server, whatever the latency,
    which needs no guessed safety margin. Up to the budget, requests go out at once: a run of
    N <= per_minute calls is never slowed down.

    ``pause_until`` holds every worker (used when the server answers 429 with Retry-After: the
    budget is shared, so one thread's 429 is everybody's).
    """

    def __init__(self, per_minute, window=60.0, clock=time.monotonic):
        self.per_minute = per_minute
        self.window = window
        self._clock = clock
        self._cond = threading.Condition()
        self._completed = collections.deque()  # completion times, ascending
        self._in_flight = 0
        self._paused_until = 0.0
        self.waited = 0.0  # total seconds callers spent waiting, for diagnostics

    def _wait(self, seconds):
        # Condition.wait releases the lock, so releases and pauses from other threads wake us.
        self._cond.wait(seconds)

    def acquire(self):
        """Block until a request may be sent; the caller must ``release()`` after the response."""
        with self._cond:
            started = self._clock()
            while True:
                now = self._clock()
                if now < self._paused_until:
                    self._wait(self._paused_until - now)
                    continue
                if not self.per_minute:
                    break
                while self._completed and self._completed[0] + self.window <= now:
                    self._completed.popleft()
                if self._in_flight + len(self._completed) < self.per_minute:
                    break
                if self._completed:
                    self._wait(self._completed[0] + self.window - now)
                else:
                    self._wait(None)  # every slot is in flight: wait for a release
            self._in_flight += 1
            self.waited += self._clock() - started

    def release(self):
        with self._cond:
            self._in_flight -= 1
            if self.per_minute:
                self._completed.append(self._clock())
            self._cond.notify_all()

    def pause_until(self, deadline):
        with self._cond:
            if deadline > self._paused_until:
                self._paused_until = deadline
            self._cond.notify_all()
