"""The Emulator object: wires key material, dataset, Entra, Defender and the server together."""

import datetime
import json
import os
import threading
import time

from . import constants as C
from .certs import KeyMaterial, write_atomic
from .data import Dataset
from .defender import Defender
from .entra import Entra
from .export import ExportService, ExportStore
from .faults import Traffic, normalize_faults
from .findings import Change, bucket_start, iso_ms, parse_snapshot
from .server import EmulatorHTTPServer, make_ssl_context


class Emulator:  # pylint: disable=too-many-instance-attributes
    """Defender for Endpoint + Entra ID emulator over HTTPS.

    ``Emulator(state_dir, seed=0, **faults).start()`` returns once the socket is
    listening; ``stop()`` (or leaving the ``with`` block) shuts it down.
    ``clock`` (default ``time.monotonic``) drives the 60-second windows and the expiry of
    the export's download links, so tests can move time without sleeping.
    ``fleet`` adds that many generated devices (fleet.py); ``findings_per_device`` makes every
    device have exactly that many export records (or more, if its KB findings are more);
    ``export_parts`` is the number of part files of the files route; ``files_host`` the host name
    of the file host (default: ``localhost`` when the API is on an IP address, else 127.0.0.1).
    ``snapshot`` is the instant the data is taken at (ISO 8601 UTC text or a datetime, on a six-hour
    boundary, or ``"now"``: the start of the current six-hour bucket of the wall clock); every time the
    emulator serves moves with it. Default: 2024-02-20 06:00 UTC.
    """

    def __init__(self, state_dir, *, seed=0, host="127.0.0.1", port=0,  # pylint: disable=too-many-arguments,too-many-locals
                 extra_software=0, extra_machines=0, fleet=0, findings_per_device=None, export_parts=3,
                 files_host=None, clock=None, verbose=False, snapshot=None, **faults):
        normalize_faults(faults)  # fail fast on unknown keys or bad values
        if isinstance(fleet, bool) or not isinstance(fleet, int) or fleet < 0:
            raise ValueError(f"fleet must be a non-negative integer, got {fleet!r}")
        self.state_dir = os.path.abspath(state_dir)
        self.seed = seed
        self.host = host
        self.verbose = verbose
        self._requested_port = port
        self.files_host = files_host or ("127.0.0.1" if host in ("localhost", "0.0.0.0", "") else "localhost")
        self.traffic = Traffic(seed, faults, clock)
        # The emulator's wall clock: real time at creation, moved by ``clock`` from there on.
        self._wall_start, self._clock_start = time.time(), self.traffic.clock()
        self.snapshot = parse_snapshot(snapshot, self.now())
        self.keys = KeyMaterial(self.state_dir, [host, self.files_host])
        self.dataset = Dataset(seed, extra_software=extra_software, extra_machines=extra_machines, fleet=fleet,
                               snapshot=self.snapshot)
        self.entra = Entra(self.keys)
        self.defender = Defender(self.dataset, self.entra, self.traffic)
        self.export_store = ExportStore(self.dataset, self.state_dir, parts=export_parts,
                                        findings_per_device=findings_per_device)
        self.defender.export = ExportService(self.export_store, self.traffic, self.now, C.TENANT_ID)
        self.port = None
        self.url = None
        self.files_port = None
        self.files_url = None
        self._server = None
        self._files_server = None
        self._thread = None
        self._files_thread = None
        self._data = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self):
        """Bind, listen and serve in a daemon thread; returns self once the socket listens."""
        if self._server is not None:
            return self
        context = make_ssl_context(self.keys.server_cert_path, self.keys.server_key_path)
        # Binding happens in the constructor; the socket listens from here on.
        self._server = EmulatorHTTPServer((self.host, self._requested_port), context, self)
        self.port = self._server.server_address[1]
        shown = "localhost" if self.host in ("0.0.0.0", "") else ("[::1]" if self.host == "::" else self.host)
        if ":" in shown and not shown.startswith("["):
            shown = f"[{shown}]"
        self.url = f"https://{shown}:{self.port}"
        self._files_server = EmulatorHTTPServer((self.host, 0), context, self, role="files")
        self.files_port = self._files_server.server_address[1]
        files_shown = f"[{self.files_host}]" if ":" in self.files_host else self.files_host
        self.files_url = f"https://{files_shown}:{self.files_port}"
        self.defender.export.files_base = self.files_url
        self.write_federated_token()
        write_atomic(os.path.join(self.state_dir, C.INFO_FILE), f"{json.dumps(self.info, indent=2)}\n")
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="mde-emulator", daemon=True)
        self._thread.start()
        self._files_thread = threading.Thread(target=self._files_server.serve_forever, kwargs={"poll_interval": 0.05},
                                              name="mde-emulator-files", daemon=True)
        self._files_thread.start()
        return self

    def stop(self):
        """Stop serving, close open connections and the listening sockets."""
        server, self._server = self._server, None
        if server is None:
            return
        files, self._files_server = self._files_server, None
        for each in (server, files):
            each.shutdown()
            each.close_connections()
            each.server_close()
        self._thread.join(timeout=5)
        self._files_thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    # -- description ----------------------------------------------------------------------------

    @property
    def ca_path(self):
        """Path of the CA certificate that signs the server certificate."""
        return self.keys.ca_path

    @property
    def tenant_id(self):
        """The fixed tenant GUID."""
        return C.TENANT_ID

    @property
    def authority(self):
        """MSAL authority: ``<url>/<tenant_id>``."""
        return f"{self.url}/{C.TENANT_ID}"

    @property
    def token_endpoint(self):
        """The v2.0 token endpoint URL."""
        return f"{self.url}/{C.TENANT_ID}/oauth2/v2.0/token"

    @property
    def clients(self):
        """Per app name: client id, roles and credential details (as in emulator.json)."""
        path = self.keys.path
        result = {}
        for name, app in C.APPS.items():
            entry = {"client_id": app["client_id"], "kind": app["kind"], "roles": list(app["roles"])}
            if app["kind"] == "secret":
                entry["client_secret"] = app["client_secret"]
            elif app["kind"] == "certificate":
                entry.update({
                    "certificate_path": path(C.CERT_APP_PEM_FILE),
                    "encrypted_key_path": path(C.CERT_APP_ENCRYPTED_PEM_FILE),
                    "pfx_path": path(C.CERT_APP_PFX_FILE),
                    "public_certificate_path": path(C.CERT_APP_CERT_FILE),
                    "password": C.CERT_PASSWORD,
                    "password_path": path(C.CERT_APP_PASSWORD_FILE),
                    "thumbprint": self.keys.cert_app_thumbprint,
                    "thumbprint_sha256": self.keys.cert_app_thumbprint_sha256,
                })
            else:
                entry.update({"token_file": path(C.FEDERATED_TOKEN_FILE), "issuer": app["issuer"],
                              "subject": app["subject"], "audience": app["audience"]})
            result[name] = entry
        return result

    def credentials_env(self, client="secret", prefix="MDE_"):
        """Environment variables that point the collection at this emulator with one of its apps
        (``prefix`` ``AZURE_`` for the tenant, client and credential, as azure.azcollection names them)."""
        app = self.clients[client]
        env = {prefix + "TENANT_ID": self.tenant_id, prefix + "CLIENT_ID": app["client_id"],
               "MDE_API_URL": self.url, "MDE_AUTHORITY_URL": self.url, "MDE_CA_PATH": self.ca_path}
        if app["kind"] == "secret":
            env[prefix + "CLIENT_SECRET"] = app["client_secret"]
        elif app["kind"] == "certificate":
            env[prefix + "CLIENT_CERTIFICATE_PATH"] = app["certificate_path"]
        elif app["kind"] == "federated":
            env[prefix + "FEDERATED_TOKEN_FILE"] = app["token_file"]
        return env

    @property
    def info(self):
        """What ``emulator.json`` and the CLI's ready line contain."""
        return {"url": self.url, "port": self.port, "ca_path": self.ca_path, "tenant_id": C.TENANT_ID,
                "tenant_domain": C.TENANT_DOMAIN, "authority": self.authority, "token_endpoint": self.token_endpoint,
                "scope": C.DEFAULT_SCOPE, "clients": self.clients, "pid": os.getpid(), "state_dir": self.state_dir,
                "seed": self.seed, "files_url": self.files_url, "fleet": self.dataset.config["fleet"],
                "export_dir": self.export_store.base_directory,
                "snapshot": f"{self.snapshot:%Y-%m-%dT%H:%M:%SZ}"}

    @property
    def data(self):
        """The dataset with relations (computed once; treat as read-only). ``data["export"]`` is the
        export's ground truth: ``kb_findings`` (device id -> {kb: number of findings}) and counts.
        With a large fleet this is large and slow: use ``export_truth()`` and friends instead."""
        if self._data is None:
            self._data = self.dataset.to_dict()
            self._data["export"] = dict(self.export_summary(), kb_findings=self.export_truth())
        return self._data

    # -- the vulnerability export ---------------------------------------------------------------

    @property
    def timeline(self):
        """The snapshot's times (findings.Timeline): ``snapshot``, ``oldest_since`` (the oldest sinceTime the
        delta takes), ``run_times`` and ``event_timestamps`` of the 56 runs, ``first_run_since(moment)``."""
        return self.export_store.timeline

    def now(self):
        """The emulator's wall clock (UTC): real time at creation plus what ``clock`` moved since."""
        seconds = self._wall_start + (self.traffic.clock() - self._clock_start)
        return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)

    def prepare_export(self):
        """Generate the export into the state dir now rather than at the first export request
        (a benchmark's first page would wait for it); returns ``export_summary()``."""
        self.export_store.ensure()
        return self.export_summary()

    def export_summary(self):
        """Counts of the generated export (generates it if needed): records, delta records, files..."""
        meta = self.export_store.ensure().meta
        return {"records": meta["records"], "kb_findings_total": meta["kb_findings"],
                "delta_records": meta["delta_records"], "devices": meta["devices"], "files": list(meta["files"]),
                "file_bytes": sum(size for dummy, dummy2, size in self.export_store.files),
                "generated_time": meta["generated_time"], "directory": self.export_store.directory}

    def export_history(self, device_id):
        """The findings.DeviceHistory of one device (its findings, their history, the ground truth)."""
        return self.export_store.model.history(device_id.lower())

    def export_truth(self, device_ids=None):
        """Ground truth of the export: device id -> {kb: number of that device's findings the KB fixes},
        for every device with a KB finding (its keys are exactly the device's getmissingkbs)."""
        model = self.export_store.model
        result = {}
        for mid in (device_ids if device_ids is not None else model.device_ids()):
            counts = model.history(mid).kb_counts()
            if counts:
                result[mid] = counts
        return result

    def delta_truth(self, since, device_ids=None):
        """Ground truth of a delta read since ``since`` (a datetime, or ISO 8601 text), RBAC moves
        cancelled: device id -> {"new": [kb], "fixed": [kb], "transient": [kb]} for the devices with
        a change. new: missing now, not at the start of ``since``'s six-hour bucket; fixed: missing
        then, not now; transient: became missing and was fixed again within the range."""
        if isinstance(since, str):
            from .defender import _parse_since  # pylint: disable=import-outside-toplevel
            since = _parse_since(since)
        model = self.export_store.model
        run, since_at = model.timeline.first_run_since(since), bucket_start(since)
        result = {}
        for mid in (device_ids if device_ids is not None else model.device_ids()):
            new, fixed, transient = model.history(mid).delta_truth(run, since_at)
            if new or fixed or transient:
                result[mid] = {"new": new, "fixed": fixed, "transient": transient}
        return result

    def add_delta_changes(self, changes):
        """Add changes after the snapshot, as the delta reports them (``POST /_emulator/delta-changes``).

        ``changes``: [{"device_id" (id or computerDnsName), "kb" (a catalog KB: "5034763", 5034763 or
        "KB5034763"), "status": "New" | "Fixed", "rbac_move": False, "at"?: ISO 8601 text or datetime
        (default ``now()``)}]. A New makes the device miss the KB (it must not miss it yet), a Fixed
        makes it not (it must miss it); ``"rbac_move": true`` (status not needed, not used) adds the Fixed (group
        ``Unassigned``) and New (its group) pair of a device-group move for each open finding of the KB
        (of the device, without ``kb``), which changes nothing. ``at`` must be from the snapshot to
        ``now()``, and not before an earlier added change. All or none are added (``ValueError``).
        From then on getmissingkbs, ``machineMissedOn``, ``data``, the export (JSON pages and files,
        generated again at the next request), ``export_truth()``, ``delta_truth()`` and the delta (its
        records after the 56 runs, eventTimestamp ``at``) show them. Returns the added changes."""
        if not isinstance(changes, (list, tuple)) or not changes:
            raise ValueError('delta-changes needs {"changes": [{"device_id", "kb", "status": "New"|"Fixed", '
                             '"rbac_move"?: false, "at"?: "<ISO 8601>"}, ...]}')
        store, data = self.export_store, self.dataset
        with store.lock:
            model = store.model
            now = self.now()
            last = model.changes[-1].at if model.changes else self.snapshot
            missing = {}        # device id -> its missing KBs after the changes checked so far
            parsed = []
            for number, item in enumerate(changes):
                change = self._change(item, len(model.changes) + number, now, last, missing)
                last = change.at
                parsed.append(change)
            for change in parsed:
                if not change.rbac_move:
                    data.set_missing(change.device_id, change.kb, change.status == "New")
            model.add_changes(parsed)
            self._data = None
        return [self._change_info(change) for change in parsed]

    def delta_changes(self):
        """The changes added so far (``GET /_emulator/delta-changes``)."""
        return [self._change_info(change) for change in self.export_store.model.changes]

    @staticmethod
    def _change_info(change):
        return {"seq": change.seq, "device_id": change.device_id, "kb": change.kb, "status": change.status,
                "rbac_move": change.rbac_move, "at": f"{change.at:%Y-%m-%dT%H:%M:%S.%fZ}",
                "event_timestamp": iso_ms(change.at)}

    @staticmethod
    def _change_time(at, now):
        """The UTC datetime of a change's ``at`` (ISO 8601 text, a datetime, or None: ``now``)."""
        from .defender import ApiError, _parse_since  # pylint: disable=import-outside-toplevel
        if at is None:
            return now
        if isinstance(at, str):
            try:
                return _parse_since(at)
            except ApiError:
                raise ValueError(f"at must be an ISO 8601 time, got {at!r}") from None
        if isinstance(at, datetime.datetime):
            return at.replace(tzinfo=datetime.timezone.utc) if at.tzinfo is None else at.astimezone(datetime.timezone.utc)
        raise ValueError(f"at must be an ISO 8601 time, got {at!r}")

    def _change(self, item, seq, now, last, missing):  # pylint: disable=too-many-arguments,too-many-branches
        """A Change from one item of add_delta_changes, checked against the state so far."""
        if not isinstance(item, dict):
            raise ValueError(f"a change must be an object, got {item!r}")
        unknown = set(item) - {"device_id", "kb", "status", "rbac_move", "at"}
        if unknown:
            raise ValueError(f"unknown keys in a change: {', '.join(sorted(unknown))}")
        key = item.get("device_id")
        mid = self.dataset.find_machine(key) if isinstance(key, str) else None
        if mid is None:
            raise ValueError(f"unknown device {key!r}")
        rbac_move = item.get("rbac_move", False)
        if not isinstance(rbac_move, bool):
            raise ValueError(f"rbac_move must be true or false, got {rbac_move!r}")
        kb = item.get("kb")
        if kb is not None:
            kb = str(kb).strip()
            kb = kb[2:] if kb[:2].upper() == "KB" else kb
            if kb not in self.dataset.kbs:
                raise ValueError(f"KB {item.get('kb')!r} is not in the catalog")
        elif not rbac_move:
            raise ValueError("a New or Fixed change needs a kb")
        status = item.get("status")
        if (status is not None or not rbac_move) and (not isinstance(status, str)
                                                      or status.capitalize() not in ("New", "Fixed")):
            raise ValueError(f"status must be New or Fixed, got {status!r}")
        # An RBAC move adds a Fixed and a New that cancel out: its status, if given, is not used.
        status = None if rbac_move else status.capitalize()
        at = self._change_time(item.get("at"), now)
        if not self.snapshot <= at <= now:
            raise ValueError(f"at ({at:%Y-%m-%dT%H:%M:%S.%fZ}) must be from the snapshot "
                             f"({self.snapshot:%Y-%m-%dT%H:%M:%SZ}) to now ({now:%Y-%m-%dT%H:%M:%S.%fZ})")
        if at < last:
            raise ValueError(f"at ({at:%Y-%m-%dT%H:%M:%S.%fZ}) is before an earlier added change "
                             f"({last:%Y-%m-%dT%H:%M:%S.%fZ}): changes are added in time order")
        kbs = missing.setdefault(mid, set(self.dataset.machine_missing[mid]))
        if kb is not None and rbac_move and kb not in kbs:
            raise ValueError(f"device {mid} does not miss KB{kb}: an RBAC move needs a finding the device has")
        if status == "New":
            if kb in kbs:
                raise ValueError(f"device {mid} misses KB{kb} already")
            kbs.add(kb)
        elif status == "Fixed":
            if kb not in kbs:
                raise ValueError(f"device {mid} does not miss KB{kb}")
            kbs.discard(kb)
        return Change(seq, mid, kb, status, rbac_move, at)

    # -- faults, stats, tokens ------------------------------------------------------------------

    def configure(self, **faults):
        """Merge fault keys into the running configuration; returns the resulting configuration."""
        return self.traffic.configure(**faults)

    def faults(self):
        """The current fault configuration."""
        return self.traffic.faults()

    def reset(self, idle_timeout=60.0):
        """Faults back to the start values, stats cleared, revocations cleared.

        First waits (up to ``idle_timeout`` seconds) for API requests still in flight, so that a
        slow request of an earlier test is not counted in the fresh stats.
        """
        self.traffic.wait_idle(idle_timeout)
        self.traffic.reset()
        self.entra.reset()

    def stats(self):
        """A snapshot of the counters and the request log."""
        result = self.traffic.stats()
        result["revocations"] = self.entra.revocations
        return result

    def revoke_tokens(self):
        """Tokens issued before this call get 401 from the API; new ones work."""
        self.entra.revoke()

    def issue_token(self, client="secret", scope=C.DEFAULT_SCOPE, lifetime_s=None):
        """A token response as the token endpoint would return it, without a credential (not counted in stats)."""
        if client not in C.APPS:
            raise ValueError(f"unknown client {client!r}; known: {', '.join(C.APPS)}")
        if scope not in C.ACCEPTED_SCOPES:
            raise ValueError(f"scope must be one of {', '.join(C.ACCEPTED_SCOPES)}")
        lifetime = self.traffic.get("token_lifetime_s") if lifetime_s is None else lifetime_s
        return self.entra.issue(client, scope[:-len("/.default")], lifetime)

    def mint_federated_token(self, subject=C.FEDERATED_SUBJECT, audience=C.FEDERATED_AUDIENCE,
                             issuer=C.FEDERATED_ISSUER, expires_in=86400):
        """A token of the emulated external IdP, e.g. with a wrong subject for negative tests."""
        return self.entra.mint_federated_token(subject=subject, audience=audience, issuer=issuer,
                                               expires_in=expires_in)

    def make_client_assertion(self, **kwargs):
        """A certificate client assertion for the "cert" app (aud defaults to this emulator's token endpoint)."""
        kwargs.setdefault("audience", self.token_endpoint)
        return self.entra.make_client_assertion(**kwargs)

    def write_federated_token(self):
        """(Re)write ``federated-token.jwt`` with a fresh 24-hour token; returns its path."""
        path = self.keys.path(C.FEDERATED_TOKEN_FILE)
        write_atomic(path, self.entra.mint_federated_token(), private=True)
        return path
