"""The vulnerability export on disk: JSON pages, gzip part files and the delta, generated once.

At the first export request (or ``Emulator.prepare_export()``) every device's findings are drawn
(findings.py) one device at a time and written into ``STATE_DIR/export/<fingerprint>/``:

* ``json/part-NNNNN.jsonl`` (+ ``.idx``, the byte offset of every line): the camelCase records of
  the JSON route, one per line, split like the files;
* ``files/part-NNNNN-<uuid>.c000.json.gz``: the same records in PascalCase, gzip-compressed JSON
  lines, as the files route serves them;
* ``delta/run-NN.jsonl`` (+ ``.idx``): the delta's records, one file per six-hour run, then
  ``delta/added.jsonl``: the changes added at run time (``Emulator.add_delta_changes``), in time order.

The fingerprint covers the dataset's parameters (the snapshot included) and the generator's source,
so a state dir reused with the same parameters (a benchmark run after another) reuses the files,
and a changed generator or another snapshot writes new ones. Changes added at run time make the
next request generate the export again, with them, into ``<fingerprint>-c<N>-<hash>/`` (the
records, the files and the delta; the part files keep their names). Pages are streamed from these files (a page of 200,000 records is never
built in memory), and the part files are sent as they are.
"""

import array
import base64
import binascii
import bisect
import datetime
import hashlib
import hmac
import json
import os
import re
import shutil
import threading
import urllib.parse
import uuid
import zlib

from . import records
from .findings import RUNS, ExportModel, bucket_start, iso_ms

SOURCES = ("data.py", "fleet.py", "findings.py", "records.py", "export.py")
CHUNK = 1 << 20
GZIP_LEVEL = 1
DEFAULT_PAGE_SIZE = 50000
MAX_PAGE_SIZE = 200000
MAX_SAS_HOURS = 6
SAS_VERSION = "2019-12-12"
STORAGE_ACCOUNT = "tvmexportstrstgeus"
EXPORT_CONTEXT = "microsoft.windowsDefenderATP.api.ExportFilesResponse"
ASSET_CONTEXT = "Collection(microsoft.windowsDefenderATP.api.AssetVulnerability)"
DELTA_CONTEXT = "Collection(microsoft.windowsDefenderATP.api.DeltaAssetVulnerability)"
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


def _source_hash():
    digest = hashlib.sha256()
    here = os.path.dirname(os.path.abspath(__file__))
    for name in SOURCES:
        with open(os.path.join(here, name), "rb") as handle:
            digest.update(handle.read())
    return digest.hexdigest()


class Stream:
    """A response body sent in chunks: bytes pieces and file ranges, with a known length.

    File ranges of JSON lines are sent with their newlines turned into commas (the records of a
    page), so a page is the lines of the files between a prefix and a suffix.
    """

    def __init__(self, pieces):
        self.pieces = pieces   # bytes, or (path, start, end, lines_to_commas)
        self.length = sum(len(p) if isinstance(p, bytes) else p[2] - p[1] for p in pieces)
        self.limit = None

    def truncate(self, length):
        """Send only the first ``length`` bytes (the malformed fault); Content-Length says so too."""
        self.limit = length
        self.length = min(self.length, length)

    def chunks(self):
        """The body, piece by piece."""
        remaining = self.length
        for piece in self.pieces:
            if remaining <= 0:
                return
            if isinstance(piece, bytes):
                data = piece[:remaining]
                remaining -= len(data)
                yield data
                continue
            path, start, end, commas = piece
            with open(path, "rb") as handle:
                handle.seek(start)
                left = min(end - start, remaining)
                while left > 0:
                    data = handle.read(min(CHUNK, left))
                    if not data:
                        raise IOError(f"{path} is shorter than its index")
                    left -= len(data)
                    remaining -= len(data)
                    yield data.replace(b"\n", b",") if commas else data


class Lines:
    """JSON-lines files seen as one sequence of records (``offsets``: where each line starts)."""

    def __init__(self, paths):
        self.paths = list(paths)
        self.offsets = []
        self.starts = [0]
        for path in self.paths:
            offsets = array.array("Q")
            with open(path + ".idx", "rb") as handle:
                offsets.frombytes(handle.read())
            self.offsets.append(offsets)
            self.starts.append(self.starts[-1] + len(offsets) - 1)
        self.total = self.starts[-1]

    def locate(self, position):
        """(file index, line) of a record position."""
        index = max(0, bisect.bisect_right(self.starts, position) - 1)
        while index < len(self.paths) - 1 and position >= self.starts[index + 1]:
            index += 1
        return index, position - self.starts[index]

    def ranges(self, start, count):
        """The file ranges of records [start, start + count), the last newline left out."""
        pieces, position, end = [], start, min(self.total, start + count)
        while position < end:
            index, line = self.locate(position)
            take = min(end - position, len(self.offsets[index]) - 1 - line)
            offsets = self.offsets[index]
            pieces.append([self.paths[index], offsets[line], offsets[line + take], True])
            position += take
        if pieces:
            pieces[-1][2] -= 1
        return [tuple(p) for p in pieces]


class _Writer:
    """One JSON-lines file and its line index, written as records come."""

    def __init__(self, path):
        self.path = path
        self.handle = open(path, "wb")  # pylint: disable=consider-using-with
        self.offsets = array.array("Q", [0])
        self.position = 0
        self.buffer = []
        self.buffered = 0

    def add(self, line):
        """Append one encoded record (ending in a newline)."""
        self.buffer.append(line)
        self.position += len(line)
        self.offsets.append(self.position)
        self.buffered += len(line)
        if self.buffered > CHUNK:
            self.flush()

    def flush(self):
        """Write what is buffered."""
        if self.buffer:
            self.handle.write(b"".join(self.buffer))
            self.buffer, self.buffered = [], 0

    def close(self):
        """Flush, close, and write the index next to the file."""
        self.flush()
        self.handle.close()
        with open(self.path + ".idx", "wb") as handle:
            handle.write(self.offsets.tobytes())


class ExportStore:  # pylint: disable=too-many-instance-attributes
    """The export of one dataset, generated once into the state dir and read from there."""

    def __init__(self, dataset, state_dir, *, parts=3, findings_per_device=None):
        if isinstance(parts, bool) or not isinstance(parts, int) or not 1 <= parts <= 1000:
            raise ValueError(f"export_parts must be an integer between 1 and 1000, got {parts!r}")
        self.model = ExportModel(dataset, findings_per_device)
        self.timeline = self.model.timeline
        self.time_path = self.timeline.time_path          # the snapshot's, in the blob paths and skiptokens
        self.generated_time = self.timeline.generated_time
        self.parts = parts
        key = dict(dataset.config, findings_per_device=findings_per_device, parts=parts, source=_source_hash(),
                   snapshot=self.generated_time)
        self.fingerprint = hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()[:20]
        self.base_directory = self.directory = os.path.join(state_dir, "export", self.fingerprint)
        self.uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"mde-emulator-export:{self.fingerprint}"))
        self.lock = threading.RLock()   # held while the export is generated and while changes are added
        self.meta = None
        self.version = 0     # the number of changes added at run time that the loaded files hold
        self.records = self.delta = None
        self.files = []      # [(name, path, size)]
        self.run_starts = []  # delta position of each run's first record (then the added changes' first)
        self.added_times = []  # the time of each record of delta/added.jsonl, in order
        self._delta_view = None

    @property
    def ready(self):
        """Whether the files are generated (with every added change) and loaded."""
        return self.meta is not None and self.version == len(self.model.changes)

    def _directory_for(self, changes):
        if not changes:
            return self.base_directory
        digest = hashlib.sha256(json.dumps([[c.device_id, c.kb, c.status, c.rbac_move, c.at.isoformat()]
                                            for c in changes]).encode("utf-8")).hexdigest()[:12]
        return f"{self.base_directory}-c{len(changes)}-{digest}"

    def ensure(self):
        """Generate the export (with the changes added so far) if it is not on disk yet, and load its
        indexes; returns self."""
        if self.ready:
            return self
        with self.lock:
            if not self.ready:
                changes = list(self.model.changes)
                directory = self._directory_for(changes)
                if not os.path.exists(os.path.join(directory, "meta.json")):
                    self._build(directory)
                self._load(directory, len(changes))
        return self

    def _load(self, directory, version):
        with open(os.path.join(directory, "meta.json"), encoding="utf-8") as handle:
            meta = json.load(handle)
        records_lines = Lines(os.path.join(directory, "json", name) for name in meta["json"])
        delta = Lines(os.path.join(directory, "delta", name) for name in meta["delta"])
        files = [(name, os.path.join(directory, "files", name),
                  os.path.getsize(os.path.join(directory, "files", name))) for name in meta["files"]]
        added_times = [datetime.datetime.fromisoformat(text) for text in meta.get("added_times", [])]
        # Swapped in one go (a request in flight keeps the objects it took).
        self._delta_view = (delta, delta.starts[:RUNS + 1], added_times)
        self.records, self.delta, self.files, self.added_times = records_lines, delta, files, added_times
        self.run_starts = delta.starts[:RUNS + 1]
        self.directory, self.version, self.meta = directory, version, meta

    def delta_since(self, since):
        """(the delta's Lines, position of the first record a read since ``since`` returns): from the first
        run at or after the start of its six-hour bucket, then the added changes from that bucket start on."""
        delta, run_starts, added_times = self._delta_view
        run = self.timeline.first_run_since(since)
        if run < RUNS:
            return delta, run_starts[run]
        return delta, run_starts[RUNS] + bisect.bisect_left(added_times, bucket_start(since))

    def file_name(self, part):
        """Spark's part file name, as in Microsoft's example."""
        return f"part-{part:05d}-{self.uuid}.c000.json.gz"

    def _build(self, directory):  # pylint: disable=too-many-locals,too-many-statements
        parent = os.path.dirname(directory)
        os.makedirs(parent, exist_ok=True)
        work = os.path.join(parent, f".{os.path.basename(directory)}.{os.getpid()}.{threading.get_ident()}.tmp")
        shutil.rmtree(work, ignore_errors=True)
        for sub in ("json", "files", "delta"):
            os.makedirs(os.path.join(work, sub))
        model = self.model
        ids = list(model.device_ids())
        parts = max(1, min(self.parts, len(ids)))
        delta = [_Writer(os.path.join(work, "delta", f"run-{run:02d}.jsonl")) for run in range(RUNS)]
        added = []   # (at, seq, device order, record order, encoded line)
        stamps = self.timeline.event_timestamps
        json_names, file_names, counts = [], [], {"records": 0, "delta_records": 0, "kb_findings": 0}
        for part in range(parts):
            json_name = f"part-{part:05d}.jsonl"
            writer = _Writer(os.path.join(work, "json", json_name))
            file_name = self.file_name(part)
            compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
            with open(os.path.join(work, "files", file_name), "wb") as gz:
                pending, size = [], 0
                for mid in ids[len(ids) * part // parts:len(ids) * (part + 1) // parts]:
                    history = model.history(mid)
                    device = history.device
                    for finding in history.current():
                        writer.add(_ENCODE(records.camel(model, device, finding)).encode("utf-8") + b"\n")
                        line = _ENCODE(records.pascal(model, device, finding)).encode("utf-8") + b"\n"
                        pending.append(line)
                        size += len(line)
                        counts["records"] += 1
                        counts["kb_findings"] += finding.kb is not None
                    if size > CHUNK:
                        gz.write(compressor.compress(b"".join(pending)))
                        pending, size = [], 0
                    for run, dummy, dummy2, status, finding, old in history.events():
                        delta[run].add(_ENCODE(records.camel(model, device, finding, (stamps[run], status, old)))
                                       .encode("utf-8") + b"\n")
                        counts["delta_records"] += 1
                    for at, seq, dummy, status, finding, old in history.added_events():
                        line = _ENCODE(records.camel(model, device, finding, (iso_ms(at), status, old)))
                        added.append((at, seq, len(added), line.encode("utf-8") + b"\n"))
                        counts["delta_records"] += 1
                gz.write(compressor.compress(b"".join(pending)) + compressor.flush())
            writer.close()
            json_names.append(json_name)
            file_names.append(file_name)
        added.sort(key=lambda entry: entry[:3])
        delta.append(_Writer(os.path.join(work, "delta", "added.jsonl")))
        for entry in added:
            delta[-1].add(entry[3])
        for writer in delta:
            writer.close()
        meta = dict(counts, devices=len(ids), json=json_names, files=file_names,
                    delta=[os.path.basename(w.path) for w in delta], generated_time=self.generated_time,
                    time_path=self.time_path, fingerprint=self.fingerprint, added_changes=len(model.changes),
                    added_times=[entry[0].isoformat() for entry in added])
        with open(os.path.join(work, "meta.json"), "w", encoding="utf-8") as handle:
            json.dump(meta, handle, indent=1)
        try:
            os.rename(work, directory)
        except OSError:  # another emulator with the same data finished first: use its files
            shutil.rmtree(work, ignore_errors=True)
            if not os.path.exists(os.path.join(directory, "meta.json")):
                raise

    # -- pages ----------------------------------------------------------------------------------

    @staticmethod
    def page(lines, start, count, prefix, next_link):
        """The Stream of one page: ``{"@odata.context": ..., "value": [records], "@odata.nextLink"?}``."""
        ranges = lines.ranges(start, count)
        head = b'{"@odata.context":' + _ENCODE(prefix).encode("utf-8") + b',"value":['
        tail = b"]" + (b',"@odata.nextLink":' + _ENCODE(next_link).encode("utf-8") if next_link else b"") + b"}"
        return Stream([head] + list(ranges) + [tail])


def encode_skiptoken(kind, index, line, time_path):
    """Defender's skiptoken shape (base64 JSON: export definition, file index, line)."""
    raw = {"ExportDefinition": {"TimePath": time_path, "Type": kind}, "ExportFileIndex": index, "LineStoppedAt": line}
    return base64.urlsafe_b64encode(_ENCODE(raw).encode("utf-8")).decode("ascii").rstrip("=")


def decode_skiptoken(kind, token, lines, time_path):
    """The record position of a skiptoken, or None if it is not one of this export's."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8"))
        definition = data["ExportDefinition"]
        index, line = data["ExportFileIndex"], data["LineStoppedAt"]
        if definition == {"TimePath": time_path, "Type": kind} and isinstance(index, int) and isinstance(line, int) \
                and 0 <= index < len(lines.paths) and 0 <= line <= len(lines.offsets[index]) - 1:
            return lines.starts[index] + line
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        pass
    return None


def position_token(kind, lines, position, time_path):
    """The skiptoken of a record position."""
    index, line = lines.locate(position)
    return encode_skiptoken(kind, index, line, time_path)


# -- SAS links of the files route ---------------------------------------------------------------------


class SasLists:
    """Signed, expiring download links, one list per SoftwareVulnerabilitiesExport call.

    ``sig`` is an HMAC-SHA256 (key drawn per emulator) over the permissions, start, expiry, the blob's
    path and the list's number, as Azure's service SAS signs its fields; expiry is checked against
    the emulator's clock. A list can also be expired early (``sas_expire_after_downloads``).
    """

    def __init__(self):
        self._key = os.urandom(32)
        self._lock = threading.Lock()
        self._lists = []
        self._by_sig = {}

    def _sign(self, number, path, start, expiry, permissions="r"):
        text = "\n".join([permissions, start, expiry, f"/blob/{STORAGE_ACCOUNT}{path}", "", "", "https", SAS_VERSION,
                          "b", "", "", "", "", "", "", str(number)])
        return base64.b64encode(hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).digest()).decode("ascii")

    def issue(self, paths, start, expiry):
        """A new list: the SAS query of each path (``start``, ``expiry``: ISO 8601 Z)."""
        with self._lock:
            number = len(self._lists)
            entry = {"number": number, "downloads": 0, "expired": False}
            self._lists.append(entry)
            queries = []
            for path in paths:
                sig = self._sign(number, path, start, expiry)
                self._by_sig[sig] = entry
                queries.append(urllib.parse.urlencode([("sv", SAS_VERSION), ("st", start), ("se", expiry),
                                                       ("sr", "b"), ("sp", "r"), ("sig", sig)],
                                                      quote_via=urllib.parse.quote))
            return number, queries

    def check(self, path, query, now_text):
        """None if the SAS is good for ``path`` now, else (status, code, detail). Returns the list too."""
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        if not query:
            return (404, "ResourceNotFound", None), None
        needed = ("sv", "se", "sr", "sp", "sig")
        if any(not params.get(k) for k in needed):
            return (403, "AuthenticationFailed", "Signature fields not well formed."), None
        with self._lock:
            entry = self._by_sig.get(params["sig"])
        start, expiry = params.get("st", ""), params["se"]
        expected = self._sign(entry["number"], path, start, expiry, params["sp"]) if entry else ""
        if entry is None or not hmac.compare_digest(expected, params["sig"]):
            text = f"{params['sp']}\n{start}\n{expiry}\n/blob/{STORAGE_ACCOUNT}{path}\n\n\nhttps\n{params['sv']}\nb\n\n\n\n\n\n"
            return (403, "AuthenticationFailed", f"Signature did not match. String to sign used was {text}"), None
        if "r" not in params["sp"]:
            return (403, "AuthorizationPermissionMismatch", None), entry
        if entry["expired"] or now_text > expiry or (start and now_text < start):
            return (403, "AuthenticationFailed", f"Signature not valid in the specified time frame: Start [{start}] - "
                                                 f"Expiry [{expiry}] - Current [{now_text}]"), entry
        return None, entry

    def downloaded(self, entry, expire_after):
        """Count a download from a list; expire the list after ``expire_after`` downloads (0: never)."""
        with self._lock:
            entry["downloads"] += 1
            if expire_after and entry["downloads"] >= expire_after:
                entry["expired"] = True

    @property
    def issued(self):
        """How many lists were issued."""
        with self._lock:
            return len(self._lists)


AZURE_MESSAGES = {
    "AuthenticationFailed": "Server failed to authenticate the request. Make sure the value of Authorization header "
                            "is formed correctly including the signature.",
    "AuthorizationPermissionMismatch": "This request is not authorized to perform this operation using this "
                                       "permission.",
    "ResourceNotFound": "The specified resource does not exist.",
    "BlobNotFound": "The specified blob does not exist.",
    "InvalidRange": "The range specified is invalid for the current size of the resource.",
    "ServerBusy": "The server is busy.",
    "InternalError": "The server encountered an internal error. Please retry the request.",
}


def azure_error(code, detail, now_text7):
    """Azure Storage's XML error body."""
    request_id = str(uuid.uuid4())
    message = AZURE_MESSAGES.get(code, code)
    body = (f'\ufeff<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{message}\n'
            f"RequestId:{request_id}\nTime:{now_text7}</Message>")
    if detail:
        body += f"<AuthenticationErrorDetail>{_xml(detail)}</AuthenticationErrorDetail>"
    return (body + "</Error>").encode("utf-8"), request_id


def _xml(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _utc_text(moment):
    return f"{moment:%Y-%m-%dT%H:%M:%SZ}"


def _utc_text7(moment):
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond * 10:07d}Z"


def _http_date(moment):
    return moment.strftime("%a, %d %b %Y %H:%M:%S GMT")


RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


class ExportService:
    """The files route and the file host: SAS lists and blob downloads, on top of the store."""

    def __init__(self, store, traffic, now, tenant):
        self.store = store
        self.traffic = traffic
        self.now = now                # the emulator's clock as a UTC datetime
        self.tenant = tenant
        self.sas = SasLists()
        self.files_base = None        # https://<file host>:<port>, set when the emulator starts

    def blob_path(self, name):
        """A part file's path on the file host, as in Microsoft's example."""
        return f"/tvm-export/{self.store.time_path}VaExport/json/OrgId={self.tenant}/{name}"

    def export_files(self, api_base, hours):
        """The SoftwareVulnerabilitiesExport answer: a fresh list of signed links to every part file."""
        store = self.store.ensure()
        names = [name for name, dummy, dummy2 in store.files]
        names += [store.file_name(len(names) + i) for i in range(self.traffic.get("export_empty_files"))]
        now = self.now()
        start, expiry = _utc_text(now), _utc_text(now + datetime.timedelta(hours=hours))
        dummy, queries = self.sas.issue([self.blob_path(name) for name in names], start, expiry)
        self.traffic.export_list_issued()
        return {"@odata.context": f"{api_base}/api/$metadata#{EXPORT_CONTEXT}",
                "exportFiles": [f"{self.files_base}{self.blob_path(name)}?{query}" for name, query in zip(names, queries)],
                "generatedTime": store.generated_time}

    def _resolve(self, path):
        """(file path or None for an empty part, size) of a blob path, or None if there is no such blob."""
        prefix = self.blob_path("")
        if not path.startswith(prefix):
            return None
        name = path[len(prefix):]
        store = self.store.ensure()
        for known, file_path, size in store.files:
            if name == known:
                return file_path, size
        match = re.match(r"^part-(\d{5})-" + re.escape(store.uuid) + r"\.c000\.json\.gz$", name)
        if match and len(store.files) <= int(match.group(1)) < len(store.files) + 1000:
            return None, 0   # an empty part (export_empty_files): an empty body, as elastic's mock serves it
        return None

    def _error(self, status, code, detail=None):
        now = self.now()
        body, request_id = azure_error(code, detail, _utc_text7(now))
        headers = {"x-ms-request-id": request_id, "x-ms-version": SAS_VERSION, "x-ms-error-code": code,
                   "Server": "Windows-Azure-Blob/1.0 Microsoft-HTTPAPI/2.0", "Date": _http_date(now)}
        return status, headers, body, "application/xml"

    def serve(self, method, raw_path, headers):  # pylint: disable=too-many-return-statements
        """(status, headers, body bytes or Stream, content type, what) for one file host request;
        ``what`` says how to count it: "bearer", "refused", "download" or "other"."""
        path, dummy, query = raw_path.partition("?")
        path = urllib.parse.unquote(path)
        if headers.get("Authorization", "").strip()[:7].lower() == "bearer ":
            # Blob storage does not take Defender's token; without x-ms-version it says so this way.
            return self._error(403, "AuthenticationFailed", "Authentication scheme Bearer is not supported in this "
                                                            "version.") + ("bearer",)
        plan = self.traffic.file_plan(raw_path)
        if plan is not None:
            status, body = plan
            if body is not None:
                data = body.encode("utf-8") if isinstance(body, str) else json.dumps(body).encode("utf-8")
                return status, {}, data, "text/plain; charset=utf-8", "refused"
            code = "ServerBusy" if status in (429, 503) else "InternalError" if status >= 500 else "AuthenticationFailed"
            return self._error(status, code) + ("refused",)
        if method not in ("GET", "HEAD"):
            return self._error(405, "UnsupportedHttpVerb") + ("refused",)
        now = self.now()
        error, entry = self.sas.check(path, query, _utc_text(now))
        if error is not None:
            status, code, detail = error
            return self._error(status, code, detail) + ("refused",)
        resolved = self._resolve(path)
        if resolved is None:
            return self._error(404, "BlobNotFound") + ("refused",)
        file_path, size = resolved
        start, end, status = 0, size, 200
        snapshot = self.store.timeline.snapshot
        version = f"{self.store.version:X}" if self.store.version else ""   # a new version with added changes
        answer = {"Last-Modified": _http_date(snapshot), "ETag": f'"0x8DC31{self.store.fingerprint[:10].upper()}{version}"',
                  "Accept-Ranges": "bytes", "x-ms-request-id": str(uuid.uuid4()), "x-ms-version": SAS_VERSION,
                  "x-ms-blob-type": "BlockBlob", "x-ms-creation-time": _http_date(snapshot),
                  "Server": "Windows-Azure-Blob/1.0 Microsoft-HTTPAPI/2.0", "Date": _http_date(now)}
        wanted = headers.get("Range") or headers.get("x-ms-range")
        if wanted:
            match = RANGE_RE.match(wanted.strip())
            first = int(match.group(1)) if match and match.group(1) else None
            last = int(match.group(2)) if match and match.group(2) else None
            if match is None or (first is None and last is None) or (first is not None and first >= size) \
                    or (first is not None and last is not None and last < first):
                return self._error(416, "InvalidRange") + ("refused",)
            start, end = (size - min(last, size), size) if first is None else (first, min(size, (last or size - 1) + 1))
            status = 206
            answer["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        body = Stream([(file_path, start, end, False)] if file_path and end > start else [])
        if method == "GET":
            self.sas.downloaded(entry, self.traffic.get("sas_expire_after_downloads"))
        return status, answer, body, "application/octet-stream", "download"
