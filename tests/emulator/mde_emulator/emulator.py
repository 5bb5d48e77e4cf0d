"""The Emulator object: wires key material, dataset, Entra, Defender and the server together."""

import json
import os
import threading

from . import constants as C
from .certs import KeyMaterial, write_atomic
from .data import Dataset
from .defender import Defender
from .entra import Entra
from .faults import Traffic, normalize_faults
from .server import EmulatorHTTPServer, make_ssl_context


class Emulator:  # pylint: disable=too-many-instance-attributes
    """Defender for Endpoint + Entra ID emulator over HTTPS.

    ``Emulator(state_dir, seed=0, **faults).start()`` returns once the socket is
    listening; ``stop()`` (or leaving the ``with`` block) shuts it down.
    ``clock`` (default ``time.monotonic``) drives the 60-second windows, so tests
    can move time without sleeping.
    """

    def __init__(self, state_dir, *, seed=0, host="127.0.0.1", port=0,  # pylint: disable=too-many-arguments
                 extra_software=0, extra_machines=0, clock=None, verbose=False, **faults):
        normalize_faults(faults)  # fail fast on unknown keys or bad values
        self.state_dir = os.path.abspath(state_dir)
        self.seed = seed
        self.host = host
        self.verbose = verbose
        self._requested_port = port
        self.keys = KeyMaterial(self.state_dir, [host])
        self.dataset = Dataset(seed, extra_software=extra_software, extra_machines=extra_machines)
        self.traffic = Traffic(seed, faults, clock)
        self.entra = Entra(self.keys)
        self.defender = Defender(self.dataset, self.entra, self.traffic)
        self.port = None
        self.url = None
        self._server = None
        self._thread = None
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
        self.write_federated_token()
        write_atomic(os.path.join(self.state_dir, C.INFO_FILE), f"{json.dumps(self.info, indent=2)}\n")
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="mde-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop serving, close open connections and the listening socket."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        self._thread.join(timeout=5)

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
                "seed": self.seed}

    @property
    def data(self):
        """The dataset with relations (computed once; treat as read-only)."""
        if self._data is None:
            self._data = self.dataset.to_dict()
        return self._data

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
