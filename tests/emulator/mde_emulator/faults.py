"""Fault injection, rate limiting and statistics.

One lock guards all of it, so that counters such as ``max_concurrent`` and
``max_in_any_60s`` are exact even with many handler threads, and so that a
deterministic fault (``fail_next``, ``drop_next``) is consumed by exactly one
request.
"""

import collections
import copy
import math
import random
import re
import threading
import time

from .constants import API_ROUTES, EXPORT_FILES_ROUTE, EXPORT_JSON_ROUTES

DEFAULT_FAULTS = {
    "latency_ms": 0.0,
    "latency_jitter_ms": 0.0,
    "token_latency_ms": 0.0,
    "rate_limit_per_minute": 0,
    "error_rate_429": 0.0,
    "retry_after_s": 1,
    "error_rate_5xx": 0.0,
    "error_statuses_5xx": [500, 502, 503, 504],
    "fail_next": [],
    "drop_next": 0,
    "malformed_next": 0,
    "malformed_rate": 0.0,
    "page_size": 0,
    "nextlink_base": None,
    "token_lifetime_s": 3599,
    # The N-th API request from now finds every token issued so far revoked (then back to 0).
    "revoke_after_api_requests": 0,
    # The vulnerability export (0 = off). Defender: 30/min and 1,000/h for each JSON route
    # (SoftwareVulnerabilitiesByMachine, SoftwareVulnerabilityChangesByMachine), 5/min and 20/h for
    # SoftwareVulnerabilitiesExport; sliding windows per route and (app, tenant), like rate_limit_per_minute.
    "export_json_rate_limit_per_minute": 0,
    "export_json_rate_limit_per_hour": 0,
    "export_files_rate_limit_per_minute": 0,
    "export_files_rate_limit_per_hour": 0,
    # After N file downloads from one list of links, every link of that list answers 403 (expired).
    "sas_expire_after_downloads": 0,
    # N more part files in the list, each an empty body (as elastic/integrations' mock serves one).
    "export_empty_files": 0,
    # The next N file downloads send the headers and half the body, then close the connection.
    "file_truncate_next": 0,
    # The listings ("software": GET /api/Software, "machines": GET /api/machines) that answer as if
    # no $filter was given, as a server that ignores (or does not support) the filter would.
    "ignore_filter": [],
}
FAULT_KEYS = tuple(DEFAULT_FAULTS)
WINDOW_S = 60.0
HOUR_S = 3600.0
ROUTE_LIMITS = {route: ("export_json_rate_limit_per_minute", "export_json_rate_limit_per_hour")
                for route in EXPORT_JSON_ROUTES}
ROUTE_LIMITS[EXPORT_FILES_ROUTE] = ("export_files_rate_limit_per_minute", "export_files_rate_limit_per_hour")
REQUEST_LOG_SIZE = 20000
FILTERED_LISTINGS = ("software", "machines")


def _number(key, value, minimum=0.0, maximum=None, integer=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{key} must be a number, got {value!r}") from None
    if integer:
        if value != int(value):
            raise ValueError(f"{key} must be an integer, got {value!r}")
        value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"{key} must be between {minimum} and {maximum}, got {value!r}")
    return value


def _fail_entry(entry):
    if not isinstance(entry, dict) or "status" not in entry:
        raise ValueError(f"fail_next entries are objects with at least a status: {entry!r}")
    unknown = set(entry) - {"path_regex", "status", "count", "retry_after", "body", "target"}
    if unknown:
        raise ValueError(f"unknown fail_next keys: {', '.join(sorted(unknown))}")
    pattern = entry.get("path_regex") or ".*"
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"fail_next path_regex {pattern!r}: {exc}") from None
    target = entry.get("target", "api")
    if target not in ("api", "token", "files"):
        raise ValueError("fail_next target must be 'api', 'token' or 'files'")
    clean = {"path_regex": pattern, "status": _number("status", entry["status"], 100, 599, True),
             "count": _number("count", entry.get("count", 1), 1, None, True), "target": target}
    if entry.get("retry_after") is not None:
        clean["retry_after"] = _number("retry_after", entry["retry_after"], 0, None, True)
    if "body" in entry:
        clean["body"] = entry["body"]
    return clean


def normalize_faults(values):
    """Validate fault keys and values; raises ValueError with a readable message."""
    unknown = set(values) - set(FAULT_KEYS)
    if unknown:
        raise ValueError(f"unknown fault keys: {', '.join(sorted(unknown))}")
    clean = {}
    for key, value in values.items():
        if key in ("latency_ms", "latency_jitter_ms", "token_latency_ms"):
            clean[key] = _number(key, value)
        elif key in ("error_rate_429", "error_rate_5xx", "malformed_rate"):
            clean[key] = _number(key, value, 0.0, 1.0)
        elif key in ("rate_limit_per_minute", "drop_next", "malformed_next", "page_size", "retry_after_s",
                     "revoke_after_api_requests", "export_json_rate_limit_per_minute", "export_json_rate_limit_per_hour",
                     "export_files_rate_limit_per_minute", "export_files_rate_limit_per_hour",
                     "sas_expire_after_downloads", "file_truncate_next"):
            clean[key] = _number(key, value, 0, None, True)
        elif key == "export_empty_files":
            clean[key] = _number(key, value, 0, 100, True)
        elif key == "token_lifetime_s":
            clean[key] = _number(key, value, 1, None, True)
        elif key == "error_statuses_5xx":
            if not isinstance(value, (list, tuple)) or not value:
                raise ValueError("error_statuses_5xx must be a non-empty list")
            clean[key] = [_number(key, v, 500, 599, True) for v in value]
        elif key == "fail_next":
            if not isinstance(value, (list, tuple)):
                raise ValueError("fail_next must be a list")
            clean[key] = [_fail_entry(e) for e in value]
        elif key == "ignore_filter":
            if not isinstance(value, (list, tuple)) or not all(v in FILTERED_LISTINGS for v in value):
                raise ValueError(f"ignore_filter must be a list of {', '.join(FILTERED_LISTINGS)}, got {value!r}")
            clean[key] = sorted(set(value))
        elif key == "nextlink_base":
            if value is not None and not (isinstance(value, str) and re.match(r"^https?://[^/]+/?$", value)):
                raise ValueError(f"nextlink_base must be like https://host:port, got {value!r}")
            clean[key] = value.rstrip("/") if value else None
    return clean


class Plan:  # pylint: disable=too-few-public-methods
    """What the handler must do with one API request before (or instead of) serving it."""

    def __init__(self, latency_s=0.0, *, action=None, status=None, retry_after=None, body=None,  # pylint: disable=too-many-arguments
                 reason=None):
        self.latency_s = latency_s
        self.action = action            # None (serve), "drop" or "respond"
        self.status = status
        self.retry_after = retry_after  # seconds, for the Retry-After header
        self.body = body                # None: the handler builds the standard error body
        self.reason = reason            # "fail_next", "rate_limit", "error_rate_429", "error_rate_5xx"


class Traffic:  # pylint: disable=too-many-instance-attributes
    """Faults, the per-client sliding window and the stats."""

    def __init__(self, seed=0, faults=None, clock=None):
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified when no API request is in flight
        self._seed = seed
        self._clock = clock or time.monotonic
        self._initial = dict(copy.deepcopy(DEFAULT_FAULTS), **normalize_faults(faults or {}))
        self._in_flight = 0  # real requests in flight: never reset, they still end later
        self.reset()

    # -- configuration --------------------------------------------------------------------------

    def reset(self):
        """Faults back to the start values, RNG reseeded, stats and windows cleared."""
        with self._lock:
            self._faults = copy.deepcopy(self._initial)
            # Faults draw from their own RNG so that the dataset never depends on them.
            self._rng = random.Random(self._seed)
            self._windows = {}  # (client_id, tenant) -> deque of arrival times within WINDOW_S
            self._route_windows = {}  # (route, client_id, tenant) -> (deque within WINDOW_S, deque within HOUR_S)
            self._stats = {
                "token_requests": 0,
                "token_requests_by_client": {},
                "token_status_counts": {},
                "oidc_requests": 0,
                "jwks_requests": 0,
                "api_requests": 0,
                "api_by_route": {route: 0 for route in API_ROUTES},
                "api_by_client": {},
                "status_counts": {},
                "faults_injected": {},
                "dropped": 0,
                "malformed": 0,
                "max_in_any_60s": 0,
                "max_in_any_60s_by_client": {},
                "max_concurrent": 0,
                "connections": 0,
                "client_connections": 0,
                "export_max_in_any_60s": {},
                "export_max_in_any_3600s": {},
                "export_records_served": {route: 0 for route in EXPORT_JSON_ROUTES},
                "export_lists_issued": 0,
                "file_requests": 0,
                "file_downloads": 0,
                "file_requests_refused": 0,
                "file_requests_with_bearer": 0,
                "file_bytes_served": 0,
                "file_status_counts": {},
                "file_connections": 0,
            }
            self._requests = collections.deque(maxlen=REQUEST_LOG_SIZE)

    def configure(self, **values):
        """Merge validated fault keys; returns the resulting configuration."""
        clean = normalize_faults(values)
        with self._lock:
            self._faults.update(copy.deepcopy(clean))
            return copy.deepcopy(self._faults)

    def faults(self):
        """A copy of the current fault configuration."""
        with self._lock:
            return copy.deepcopy(self._faults)

    def get(self, key):
        """One fault value (a copy)."""
        with self._lock:
            return copy.deepcopy(self._faults[key])

    # -- helpers (call with the lock held) -------------------------------------------------------

    def _log(self, method, raw_path, route, status, client_id):
        self._requests.append({"t": round(time.time(), 6), "method": method, "raw_path": raw_path, "route": route,
                               "status": status, "client_id": client_id})

    def _count(self, table, key):
        self._stats[table][key] = self._stats[table].get(key, 0) + 1

    def _take_fail_next(self, raw_path, target):
        for index, entry in enumerate(self._faults["fail_next"]):
            if entry["target"] == target and re.search(entry["path_regex"], raw_path, re.IGNORECASE):
                entry["count"] -= 1
                if entry["count"] <= 0:
                    del self._faults["fail_next"][index]
                self._count("faults_injected", "fail_next")
                return Plan(action="respond", status=entry["status"], retry_after=entry.get("retry_after"),
                            body=copy.deepcopy(entry.get("body")), reason="fail_next")
        return None

    def _arrive(self, rate_key):
        """Record an API arrival; return (now, the deque of arrivals in the last 60 s including this one)."""
        now = self._clock()
        window = self._windows.setdefault(rate_key, collections.deque())
        while window and window[0] <= now - WINDOW_S:
            window.popleft()
        window.append(now)
        count = len(window)
        # The largest count over windows ending at an arrival is the largest over any window.
        client = str(rate_key[0])
        by_client = self._stats["max_in_any_60s_by_client"]
        by_client[client] = max(by_client.get(client, 0), count)
        self._stats["max_in_any_60s"] = max(self._stats["max_in_any_60s"], count)
        return now, window

    def _arrive_route(self, route, rate_key):
        """Record an arrival on an export route; return (now, minute deque, hour deque)."""
        now = self._clock()
        minute, hour = self._route_windows.setdefault((route,) + tuple(rate_key),
                                                      (collections.deque(), collections.deque()))
        for window, span in ((minute, WINDOW_S), (hour, HOUR_S)):
            while window and window[0] <= now - span:
                window.popleft()
            window.append(now)
        for table, window in (("export_max_in_any_60s", minute), ("export_max_in_any_3600s", hour)):
            self._stats[table][route] = max(self._stats[table].get(route, 0), len(window))
        return now, minute, hour

    def _route_limit(self, route, arrival):
        """A 429 plan if this arrival is over the route's own per-minute or per-hour limit."""
        if arrival is None:
            return None
        now, minute, hour = arrival
        retry = 0
        for key, window, span in zip(ROUTE_LIMITS[route], (minute, hour), (WINDOW_S, HOUR_S)):
            limit = self._faults[key]
            if limit and len(window) > limit:
                retry = max(retry, int(math.ceil(window[len(window) - limit] + span - now)))
        if not retry:
            return None
        self._count("faults_injected", "export_rate_limit")
        return Plan(action="respond", status=429, retry_after=max(1, retry), reason="export_rate_limit")

    # -- API requests ---------------------------------------------------------------------------

    def take_revocation(self):
        """True when this API arrival is the one ``revoke_after_api_requests`` counts down to."""
        with self._lock:
            remaining = self._faults["revoke_after_api_requests"]
            if remaining <= 0:
                return False
            self._faults["revoke_after_api_requests"] = remaining - 1
            if remaining == 1:
                self._count("faults_injected", "revocation")
                return True
            return False

    def api_begin(self, raw_path, rate_key, route=None):  # pylint: disable=too-many-return-statements
        """Count an API arrival and decide which fault (if any) answers it."""
        with self._lock:
            faults = self._faults
            self._stats["api_requests"] += 1
            self._count("api_by_client", str(rate_key[0]))
            self._in_flight += 1
            self._stats["max_concurrent"] = max(self._stats["max_concurrent"], self._in_flight)
            now, window = self._arrive(rate_key)
            arrival = self._arrive_route(route, rate_key) if route in ROUTE_LIMITS else None
            latency = faults["latency_ms"]
            if faults["latency_jitter_ms"]:
                latency += self._rng.uniform(-faults["latency_jitter_ms"], faults["latency_jitter_ms"])
            plan = Plan(latency_s=max(0.0, latency) / 1000.0)
            if faults["drop_next"] > 0:
                faults["drop_next"] -= 1
                self._count("faults_injected", "drop_next")
                plan.action = "drop"
                return plan
            injected = self._take_fail_next(raw_path, "api")
            if injected:
                injected.latency_s = plan.latency_s
                return injected
            limit = faults["rate_limit_per_minute"]
            if limit and len(window) > limit:
                # Rejected arrivals stay in the window, so the next slot frees when the
                # arrival that is `limit` places back from the newest one leaves it.
                frees_at = window[len(window) - limit] + WINDOW_S
                plan.action, plan.status, plan.reason = "respond", 429, "rate_limit"
                plan.retry_after = max(1, int(math.ceil(frees_at - now)))
                self._count("faults_injected", "rate_limit")
                return plan
            limited = self._route_limit(route, arrival)
            if limited:
                limited.latency_s = plan.latency_s
                return limited
            if faults["error_rate_429"] and self._rng.random() < faults["error_rate_429"]:
                plan.action, plan.status, plan.reason = "respond", 429, "error_rate_429"
                plan.retry_after = faults["retry_after_s"]
                self._count("faults_injected", "error_rate_429")
                return plan
            if faults["error_rate_5xx"] and self._rng.random() < faults["error_rate_5xx"]:
                plan.action, plan.reason = "respond", "error_rate_5xx"
                plan.status = self._rng.choice(faults["error_statuses_5xx"])
                self._count("faults_injected", "error_rate_5xx")
                return plan
            return plan

    def ignores_filter(self, listing):
        """Whether the ``$filter`` of a request to this listing ("software", "machines") is to be ignored."""
        with self._lock:
            if listing not in self._faults["ignore_filter"]:
                return False
            self._count("faults_injected", "ignore_filter")
            return True

    def take_malformed(self):
        """Whether this (successful) response must be truncated."""
        with self._lock:
            faults = self._faults
            if faults["malformed_next"] > 0:
                faults["malformed_next"] -= 1
            elif not (faults["malformed_rate"] and self._rng.random() < faults["malformed_rate"]):
                return False
            self._stats["malformed"] += 1
            self._count("faults_injected", "malformed")
            return True

    def wait_idle(self, timeout):
        """Wait until no API request is in flight (a slow one from an earlier test, say); True if so."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def api_end(self, method, raw_path, route, status, client_id):
        """Called once per api_begin, also for dropped requests (status None)."""
        with self._lock:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.notify_all()
            self._count("api_by_route", route or "unknown")
            if status is None:
                self._stats["dropped"] += 1
            else:
                self._count("status_counts", str(status))
            self._log(method, raw_path, route, status, client_id)

    # -- the vulnerability export ---------------------------------------------------------------

    def records_served(self, route, count):
        """Count the records of an export page."""
        with self._lock:
            self._stats["export_records_served"][route] = self._stats["export_records_served"].get(route, 0) + count

    def export_list_issued(self):
        """Count a list of file links."""
        with self._lock:
            self._stats["export_lists_issued"] += 1

    def file_plan(self, raw_path):
        """(status, body) of a fail_next entry with target "files", or None."""
        with self._lock:
            injected = self._take_fail_next(raw_path, "files")
            return (injected.status, injected.body) if injected else None

    def take_file_truncate(self):
        """Whether this download must stop halfway (file_truncate_next)."""
        with self._lock:
            if self._faults["file_truncate_next"] > 0:
                self._faults["file_truncate_next"] -= 1
                self._count("faults_injected", "file_truncate")
                return True
            return False

    def file_done(self, method, raw_path, status, what, sent):  # pylint: disable=too-many-arguments
        """Count a file host request: ``what`` is "download", "bearer", "refused" or "other"; ``sent``: body bytes."""
        with self._lock:
            stats = self._stats
            stats["file_requests"] += 1
            self._count("file_status_counts", str(status))
            if what == "bearer":
                stats["file_requests_with_bearer"] += 1
            if status >= 400:
                stats["file_requests_refused"] += 1
            elif what == "download" and method == "GET":
                stats["file_downloads"] += 1
            stats["file_bytes_served"] += sent
            self._log(method, raw_path.split("?", 1)[0], "export_file", status, None)

    # -- Entra requests -------------------------------------------------------------------------

    def token_plan(self, raw_path):
        """Latency and any fail_next entry (target "token") for a token request."""
        with self._lock:
            injected = self._take_fail_next(raw_path, "token")
            latency = self._faults["token_latency_ms"] / 1000.0
            if injected:
                injected.latency_s = latency
                return injected
            return Plan(latency_s=latency)

    def token_done(self, method, raw_path, client_key, status, client_id):
        """Count a token request."""
        with self._lock:
            self._stats["token_requests"] += 1
            self._count("token_requests_by_client", client_key or "(none)")
            self._count("token_status_counts", str(status))
            self._log(method, raw_path, "token", status, client_id)

    def discovery_done(self, method, raw_path, route, status):
        """Count an OIDC discovery or JWKS request."""
        with self._lock:
            self._stats["jwks_requests" if route == "jwks" else "oidc_requests"] += 1
            self._log(method, raw_path, route, status, None)

    def other_done(self, method, raw_path, status):
        """Log a request to an unknown path."""
        with self._lock:
            self._log(method, raw_path, "unknown", status, None)

    def connection_accepted(self, client_traffic=False, files=False):
        """Count a completed TLS handshake, or the first non-admin request on a connection."""
        with self._lock:
            self._stats["file_connections" if files else "client_connections" if client_traffic else "connections"] += 1

    def clock(self):
        """The clock of the windows (time.monotonic or the test's)."""
        return self._clock()

    # -- reporting ------------------------------------------------------------------------------

    def stats(self):
        """A deep copy of the counters plus the request log."""
        with self._lock:
            result = copy.deepcopy(self._stats)
            result["in_flight"] = self._in_flight
            result["requests"] = [dict(r) for r in self._requests]
            return result
