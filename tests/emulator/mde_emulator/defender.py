"""Emulated Defender for Endpoint API: routing, permissions, OData options and paging."""

import base64
import binascii
import collections
import datetime
import json
import re
import threading
import urllib.parse
import uuid

from . import constants as C
from . import export as X
from .data import MachineSequence
from .odata import DATETIME, NUMBER, STRING, STRINGS, FilterError, compile_filter

JSON_TYPE = "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8"
MAX_TOP = 10000
SELECTIONS_KEPT = 8   # filtered machine lists kept for the next pages of a listing
SOFTWARE_FILTER_FIELDS = ("id", "name", "vendor")
# The fields get-machines.md lists for $filter, with their types (odata.py).
MACHINE_FILTER_FIELDS = {"computerDnsName": STRING, "id": STRING, "version": STRING, "deviceValue": STRING,
                         "aadDeviceId": STRING, "machineTags": STRINGS, "lastSeen": DATETIME, "exposureLevel": STRING,
                         "onboardingStatus": STRING, "lastIpAddress": STRING, "healthStatus": STRING,
                         "osPlatform": STRING, "riskScore": STRING, "rbacGroupId": NUMBER}
NO_MACHINES_MESSAGE = "No machines were found"
KB_CONTEXT = "Collection(microsoft.windowsDefenderATP.api.PublicProductFixDto)"
STATUS_CODES = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
                408: "RequestTimeout", 409: "Conflict", 429: "TooManyRequests", 500: "InternalServerError",
                501: "NotImplemented", 502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout"}
STATUS_MESSAGES = {500: "An unexpected error occurred, retry the operation.",
                   502: "Bad gateway.",
                   503: "The service is temporarily unavailable, retry the operation.",
                   504: "The operation timed out."}
UNAUTHORIZED_MESSAGES = {"missing": "Authorization header is missing or is not a Bearer token.",
                         "invalid": "The access token is invalid.",
                         "expired": "The access token has expired.",
                         "revoked": "The access token has been revoked."}
ROUTE_ROLES = {
    "software_list": (C.ROLE_SOFTWARE,),
    "software": (C.ROLE_SOFTWARE,),
    "software_missing_kbs": (C.ROLE_SOFTWARE,),
    "software_machine_references": (C.ROLE_SOFTWARE,),
    "machine_list": (C.ROLE_MACHINE, C.ROLE_MACHINE_RW),
    "machine": (C.ROLE_MACHINE, C.ROLE_MACHINE_RW),
    "machine_missing_kbs": (C.ROLE_SOFTWARE,),
    "software_vulnerabilities_by_machine": (C.ROLE_VULNERABILITY,),
    "software_vulnerabilities_export": (C.ROLE_VULNERABILITY,),
    "software_vulnerability_changes_by_machine": (C.ROLE_VULNERABILITY,),
}
# /api/machines/<name> routes of the vulnerability export (names case-insensitive).
EXPORT_ROUTES = {"softwarevulnerabilitiesbymachine": "software_vulnerabilities_by_machine",
                 "softwarevulnerabilitiesexport": "software_vulnerabilities_export",
                 "softwarevulnerabilitychangesbymachine": "software_vulnerability_changes_by_machine"}
SINCE_RE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,7}))?)?)?"
                      r"(Z|[+-]\d\d:?\d\d)?$", re.IGNORECASE)


# What a route handler sees of the request: decoded ids, raw query, raw path, base URL.
Request = collections.namedtuple("Request", "ids query path base")


class ApiError(Exception):
    """An error answer of the API (status, Defender error code, message)."""

    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_body(code, message):
    """Defender's error JSON."""
    # "target" is the correlation id the docs ask users to quote to support.
    return {"error": {"code": code, "message": message, "target": str(uuid.uuid4())}}


def route(path):
    """Map a raw URL path to (route name, decoded ids) or (None, None) for a non-API path.

    Segments are split on the raw "/" first and percent-decoded afterwards, so an
    encoded slash stays inside its ID (``x%2F..%2Fmachines`` is one software ID).
    """
    segments = path.split("/")[1:]
    if not segments or segments[0].lower() != "api":
        return None, None
    rest = segments[1:]
    if rest and rest[0].lower() == "v1.0":
        rest = rest[1:]
    if len(rest) > 1 and rest[-1] == "":
        rest = rest[:-1]  # tolerate one trailing slash
    rest = [urllib.parse.unquote(s) for s in rest]
    words = [s.lower() for s in rest]
    if len(words) == 2 and words[0] == "machines" and words[1] in EXPORT_ROUTES:
        return EXPORT_ROUTES[words[1]], []
    table = {
        ("software", 1): "software_list", ("software", 2): "software",
        ("machines", 1): "machine_list", ("machines", 2): "machine",
    }
    if words and (words[0], len(words)) in table:
        return table[(words[0], len(words))], rest[1:]
    if len(words) == 3:
        sub = {("software", "getmissingkbs"): "software_missing_kbs",
               ("software", "machinereferences"): "software_machine_references",
               ("machines", "getmissingkbs"): "machine_missing_kbs"}.get((words[0], words[2]))
        if sub:
            return sub, [rest[1]]
    return "unknown", rest


def _int_option(name, value, maximum=None):
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0 or str(number) != value.strip().lstrip("+"):
        raise ApiError(400, "ODataError", f"Invalid value '{value}' for {name} query option found. The {name} "
                       "query option requires a non-negative integer value.")
    if maximum is not None and number > maximum:
        raise ApiError(400, "ODataError", f"The limit of '{maximum}' for Top query has been exceeded. The value "
                       f"from the incoming request is '{number}'.")
    return number


def _encode_token(route_name, offset):
    raw = json.dumps({"r": route_name, "o": offset}, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_token(route_name, token):
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8"))
        if data["r"] == route_name and isinstance(data["o"], int) and data["o"] >= 0:
            return data["o"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        pass
    raise ApiError(400, "ODataError", f"The skip token value '{token}' is invalid.")


class Defender:
    """Serves /api requests from the dataset."""

    def __init__(self, dataset, entra, traffic):
        self.data = dataset
        self.entra = entra
        self.traffic = traffic
        self.export = None  # set by the Emulator: store, sas, now(), files_base
        self._selections = {}   # (type name, $filter) -> the MachineSequence view it keeps
        self._selections_lock = threading.Lock()

    def fault_response(self, plan):
        """(status, body bytes or object, headers) for an injected fault."""
        headers = {}
        if plan.retry_after is not None:
            headers["Retry-After"] = str(plan.retry_after)
        if plan.body is not None:
            return plan.status, plan.body, headers
        code = STATUS_CODES.get(plan.status, "Error")
        if plan.status == 429:
            message = f"Rate limit is exceeded. Try again in {plan.retry_after or 1} seconds."
        else:
            message = STATUS_MESSAGES.get(plan.status, code)
        return plan.status, error_body(code, message), headers

    def respond(self, plan, method, route_name, *, request, auth):  # pylint: disable=too-many-arguments
        """The wire response (status, body bytes, headers, content type) for a fault plan or a served request."""
        if plan.action == "respond":
            status, body, headers = self.fault_response(plan)
        else:
            status, body, headers = self.serve(method, route_name, request, auth)
        if isinstance(body, str):  # e.g. an HTML error page injected with fail_next
            return status, body.encode("utf-8"), headers, "text/plain; charset=utf-8"
        if isinstance(body, X.Stream):  # an export page, streamed from the export's files
            if self.traffic.take_malformed():
                body.truncate(max(1, body.length // 2))
            return status, body, headers, JSON_TYPE
        data = json.dumps(body).encode("utf-8")
        if status == 200 and self.traffic.take_malformed():
            data = data[:max(1, len(data) // 2)]  # valid HTTP framing, invalid JSON
        return status, data, headers, JSON_TYPE

    def serve(self, method, route_name, request, auth):
        """Answer one API request; returns (status, body object, headers)."""
        claims, reason = auth
        try:
            if claims is None:
                raise ApiError(401, "Unauthorized", UNAUTHORIZED_MESSAGES[reason],
                               {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            if route_name == "unknown":
                raise ApiError(404, "NotFound", "The requested resource was not found.")
            if method not in ("GET", "HEAD"):
                raise ApiError(405, "MethodNotAllowed", f"The requested resource does not support http method '{method}'.")
            required = ROUTE_ROLES[route_name]
            if not set(required) & set(claims.get("roles") or []):
                raise ApiError(403, "Forbidden", "The application does not have any of the required application "
                               f"permissions ({', '.join(required)}) to access the resource.")
            handler = getattr(self, f"_{route_name}")
            return 200, handler(request), {}
        except ApiError as exc:
            return exc.status, error_body(exc.code, exc.message), exc.headers

    # -- helpers --------------------------------------------------------------------------------

    @staticmethod
    def _options(query):
        options = {}
        for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
            options.setdefault(key, value)
        return options

    def _page(self, route_name, items, context, request, default_page_size=0):  # pylint: disable=too-many-arguments
        """Wrap a collection, splitting it into pages with @odata.nextLink when page_size is set."""
        query, base = request.query, request.base
        options = self._options(query)
        offset = _decode_token(route_name, options["$skiptoken"]) if "$skiptoken" in options else 0
        page_size = self.traffic.get("page_size") or default_page_size
        body = {"@odata.context": f"{base}/api/$metadata#{context}"}
        if page_size and offset + page_size < len(items):
            kept = [part for part in query.split("&") if part and not part.startswith("$skiptoken=")
                    and not part.startswith("%24skiptoken=")]
            kept.append(f"$skiptoken={_encode_token(route_name, offset + page_size)}")
            link_base = self.traffic.get("nextlink_base") or base
            body["value"] = list(items[offset:offset + page_size])
            body["@odata.nextLink"] = f"{link_base}{request.path}?{'&'.join(kept)}"
        else:
            body["value"] = list(items[offset:offset + page_size] if page_size else items[offset:])
        return body

    def _odata_list(self, items, fields, type_name, query, listing, if_none=None):  # pylint: disable=too-many-arguments
        """$filter (unless the ignore_filter fault names ``listing``), then $skip and $top. ``if_none``:
        the ApiError to raise when the filter (or the dataset) leaves nothing, before $skip and $top.
        A MachineSequence stays a view (no entity is drawn but those of the page served), and its
        filtered views are kept for the next pages."""
        options = self._options(query)
        if "$filter" in options and not self.traffic.ignores_filter(listing):
            try:
                predicate = compile_filter(options["$filter"], fields, type_name)
            except FilterError as exc:
                raise ApiError(400, "ODataError", f"Invalid filter clause: {exc}") from None
            if isinstance(items, MachineSequence):
                items = self._selected(type_name, options["$filter"], items, predicate)
            else:
                items = [item for item in items if predicate(item)]
        skip = _int_option("$skip", options["$skip"]) if "$skip" in options else 0
        top = _int_option("$top", options["$top"], MAX_TOP) if "$top" in options else None
        if if_none is not None and not items:
            raise if_none
        return items[skip:] if top is None else items[skip:skip + top]

    def _selected(self, type_name, text, items, predicate):
        """The view of ``items`` a filter keeps, drawn once per filter (the pages of one listing ask again
        with the same filter); the data's machines do not change once built. The last few are kept."""
        key = (type_name, text)
        with self._selections_lock:
            selected = self._selections.pop(key, None)
        if selected is None:
            selected = items.select(predicate)
        with self._selections_lock:
            self._selections[key] = selected   # the most recent last
            while len(self._selections) > SELECTIONS_KEPT:
                del self._selections[next(iter(self._selections))]
        return selected

    def _software_id(self, ids):
        sid = ids[0]
        if sid not in self.data.software:
            raise ApiError(404, "ResourceNotFound", f"Software {sid} was not found")
        return sid

    def _machine_id(self, ids, by_name):
        key = ids[0]
        mid = self.data.find_machine(key) if by_name else (key.lower() if key.lower() in self.data.machines else None)
        if mid is None:
            raise ApiError(404, "ResourceNotFound", f"Machine {key} was not found")
        return mid

    # -- routes ------------------------------------------------------------------------------

    def _software_list(self, request):
        items = self._odata_list(self.data.software_list(), SOFTWARE_FILTER_FIELDS, "Software", request.query,
                                 "software")
        return self._page("software_list", items, "Software", request)

    def _software(self, request):
        return dict({"@odata.context": f"{request.base}/api/$metadata#Software/$entity"},
                    **self.data.software[self._software_id(request.ids)])

    def _software_missing_kbs(self, request):
        items = self.data.software_kbs(self._software_id(request.ids))
        return self._page("software_missing_kbs", items, KB_CONTEXT, request)

    def _software_machine_references(self, request):
        sid = self._software_id(request.ids)
        items = [self.data.machine_reference(mid) for mid in self.data.software_machines[sid]]
        return self._page("software_machine_references", items, "MachineReferences", request)

    def _machine_list(self, request):
        # get-machines.md: "If there are no recent machines, you see 404 Not Found": a filter that selects no
        # device is a 404, not an empty collection. ($skip past the end of a non-empty match stays a 200 [].)
        items = self._odata_list(self.data.machine_list(), MACHINE_FILTER_FIELDS, "Machine", request.query, "machines",
                                 if_none=ApiError(404, "ResourceNotFound", NO_MACHINES_MESSAGE))
        # "Maximum page size is 10,000": a fleet larger than that comes in pages even without page_size.
        return self._page("machine_list", items, "Machines", request, MAX_TOP if len(items) > MAX_TOP else 0)

    def _machine(self, request):
        return dict({"@odata.context": f"{request.base}/api/$metadata#Machines/$entity"},
                    **self.data.machines[self._machine_id(request.ids, by_name=True)])

    def _machine_missing_kbs(self, request):
        items = self.data.machine_kbs(self._machine_id(request.ids, by_name=False))
        return self._page("machine_missing_kbs", items, KB_CONTEXT, request)

    # -- the vulnerability export ---------------------------------------------------------------

    @staticmethod
    def _loose_options(query):
        """Query options with case-insensitive names (Microsoft's own nextLink says pagesize, sincetime)."""
        options = {}
        for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
            options.setdefault(key.lower(), value)
        return options

    @staticmethod
    def _page_size(options):
        text = options.get("pagesize")
        if text is None:
            return X.DEFAULT_PAGE_SIZE
        try:
            number = int(text)
        except ValueError:
            number = -1
        if not 1 <= number <= X.MAX_PAGE_SIZE or str(number) != text.strip().lstrip("+"):
            raise ApiError(400, "ODataError", f"Invalid value '{text}' for pageSize query option found. The pageSize "
                           f"query option requires an integer value between 1 and {X.MAX_PAGE_SIZE}.")
        return number

    def _export_page(self, route_name, kind, lines, first, request, extra_query=""):  # pylint: disable=too-many-arguments
        """One page of an export route from record ``first`` on (skiptoken, pageSize, $top)."""
        options = self._loose_options(request.query)
        page_size = self._page_size(options)
        context = f"{request.base}/api/$metadata#{X.ASSET_CONTEXT if kind == 'VaExport' else X.DELTA_CONTEXT}"
        if "$top" in options:  # documented: no @odata.nextLink, so it does not pull all the data
            top = _int_option("$top", options["$top"], X.MAX_PAGE_SIZE)
            count = max(0, min(top, lines.total - first))
            self.traffic.records_served(route_name, count)
            return X.ExportStore.page(lines, first, count, context, None)
        start = first
        if "$skiptoken" in options:
            start = X.decode_skiptoken(kind, options["$skiptoken"], lines, self.export.store.time_path)
            if start is None or start < first:
                raise ApiError(400, "ODataError", f"The skip token value '{options['$skiptoken']}' is invalid.")
        end = min(lines.total, start + page_size)
        link = None
        if end < lines.total:
            link_base = self.traffic.get("nextlink_base") or request.base
            link = (f"{link_base}{request.path}?{extra_query}pagesize={page_size}"
                    f"&$skiptoken={X.position_token(kind, lines, end, self.export.store.time_path)}")
        self.traffic.records_served(route_name, end - start)
        return X.ExportStore.page(lines, start, end - start, context, link)

    def _software_vulnerabilities_by_machine(self, request):
        store = self.export.store.ensure()
        return self._export_page("software_vulnerabilities_by_machine", "VaExport", store.records, 0, request)

    def _software_vulnerability_changes_by_machine(self, request):
        store = self.export.store.ensure()
        options = self._loose_options(request.query)
        text = options.get("sincetime")
        if not text:
            raise ApiError(400, "MissingRequiredParameter", "The sinceTime parameter is required.")
        since = _parse_since(text)
        oldest = store.timeline.oldest_since   # 14 days before the snapshot
        if since < oldest:
            raise ApiError(400, "InvalidInput", f"sinceTime '{text}' is too far back: the changes of the last 14 days "
                           f"are kept (from {oldest:%Y-%m-%dT%H:%M:%SZ}).")
        delta, first = store.delta_since(since)
        return self._export_page("software_vulnerability_changes_by_machine", "VaDelta", delta, first, request,
                                 extra_query=f"sincetime={urllib.parse.quote(text, safe='')}&")

    def _software_vulnerabilities_export(self, request):
        options = self._loose_options(request.query)
        text = options.get("sasvalidhours", "1")
        try:
            hours = int(text)
        except ValueError:
            hours = -1
        if not 1 <= hours <= X.MAX_SAS_HOURS:
            raise ApiError(400, "InvalidInput", f"Invalid value '{text}' for sasValidHours: it must be an integer "
                           f"between 1 and {X.MAX_SAS_HOURS}.")
        return self.export.export_files(request.base, hours)


def _parse_since(text):
    """An ISO 8601 time (or date), UTC unless it says otherwise; 400 InvalidInput if it is none."""
    match = SINCE_RE.match(text.strip())
    if not match:
        raise ApiError(400, "InvalidInput", f"Invalid value '{text}' for sinceTime: expected an ISO 8601 date and time, "
                       "e.g. 2024-02-19T18:35:49.924Z.")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                                   int(second or 0), int((fraction or "0").ljust(6, "0")[:6]),
                                   tzinfo=datetime.timezone.utc)
    except ValueError:
        raise ApiError(400, "InvalidInput", f"Invalid value '{text}' for sinceTime.") from None
    if zone and zone.upper() != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        moment -= sign * datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return moment
