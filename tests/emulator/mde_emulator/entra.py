"""Emulated Microsoft Entra ID: OIDC discovery, JWKS, the token endpoint and token checks.

Only the client credentials grant is implemented, with the three credential
types the collection supports: a client secret, a certificate (signed client
assertion, as MSAL builds it) and a federated token (workload identity).
Errors follow Entra's JSON shape and AADSTS codes so that client error
handling can be exercised.
"""

import base64
import datetime
import hmac
import re
import threading
import time
import uuid

import jwt

from . import constants as C
from .certs import b64url

CERT_DOC = "https://learn.microsoft.com/entra/identity-platform/certificate-credentials"
WIF_DOC = "https://learn.microsoft.com/entra/workload-id/workload-identity-federation"
RESERVED_SCOPES = {"openid", "profile", "offline_access", "email"}
GUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


class TokenError(Exception):
    """An error answer of the token endpoint."""

    def __init__(self, status, error, code, text):
        super().__init__(f"AADSTS{code}: {text}")
        self.status = status
        self.error = error
        self.code = code
        self.text = text


def _utc(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)


def error_body(error, code, text, correlation_id=None):
    """Entra's error JSON: the description repeats trace/correlation ids and the timestamp on extra lines."""
    stamp = _utc(time.time()).strftime("%Y-%m-%d %H:%M:%SZ")
    trace_id = str(uuid.uuid4())
    correlation_id = correlation_id or str(uuid.uuid4())
    description = (f"AADSTS{code}: {text}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\n"
                   f"Timestamp: {stamp}")
    return {"error": error, "error_description": description, "error_codes": [code], "timestamp": stamp,
            "trace_id": trace_id, "correlation_id": correlation_id,
            "error_uri": f"https://login.microsoftonline.com/error?code={code}"}


def _missing(name):
    return TokenError(400, "invalid_request", 900144,
                      f"The request body must contain the following parameter: '{name}'.")


def _iso7(seconds):
    return _utc(seconds).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def _hex_thumbprint(value):
    """x5t / x5t#S256 header value (base64url, padded or not) as upper-case hex."""
    if not isinstance(value, str):
        return str(value)
    try:
        return base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4)).hex().upper()
    except (ValueError, TypeError):
        return value


class Entra:  # pylint: disable=too-many-instance-attributes
    """Token issuing and validation for the fixed tenant and apps in ``constants``."""

    def __init__(self, keys):
        self.keys = keys
        self.tenant_id = C.TENANT_ID
        self.issuer = f"https://sts.windows.net/{C.TENANT_ID}/"
        self._by_client_id = {app["client_id"].lower(): name for name, app in C.APPS.items()}
        self._lock = threading.Lock()
        self._issued = set()   # "uti" of every token issued by this process
        self._revoked = set()
        self.revocations = 0

    # -- discovery ------------------------------------------------------------------------------

    def resolve_tenant(self, segment):
        """The tenant GUID for a path segment (GUID or initial domain), or None."""
        return C.TENANT_ID if segment.lower() in (C.TENANT_ID, C.TENANT_DOMAIN) else None

    def tenant_not_found(self, segment):
        """The AADSTS90002 error for an unknown tenant."""
        return TokenError(400, "invalid_request", 90002,
                          f"Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are "
                          "signing into the correct cloud. Check with your subscription administrator, this may "
                          "happen if there are no active subscriptions for the tenant.")

    def openid_configuration(self, segment, base, v2=True):
        """The discovery document. MSAL needs authorization_endpoint and an https token_endpoint
        whose first path segment is the tenant."""
        tid = self.resolve_tenant(segment)
        if tid is None:
            err = self.tenant_not_found(segment)
            err.error = "invalid_tenant"
            raise err
        root = f"{base}/{tid}"
        oauth = root + ("/oauth2/v2.0" if v2 else "/oauth2")
        return {
            "token_endpoint": f"{oauth}/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": root + ("/discovery/v2.0/keys" if v2 else "/discovery/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{root}/v2.0" if v2 else self.issuer,
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{oauth}/authorize",
            "device_authorization_endpoint": f"{oauth}/devicecode",
            "end_session_endpoint": f"{oauth}/logout",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "roles", "appid"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
        }

    def jwks(self):
        """The JWKS document that verifies access tokens."""
        return self.keys.jwks()

    # -- token endpoint -------------------------------------------------------------------------

    def token(self, segment, form, bases, *, v2=True, basic_auth=None, lifetime_s=3599):  # pylint: disable=too-many-arguments
        """Handle a token request; returns (app name, response body) or raises TokenError."""
        if self.resolve_tenant(segment) is None:
            raise self.tenant_not_found(segment)
        grant = form.get("grant_type")
        if not grant:
            raise _missing("grant_type")
        if grant != "client_credentials":
            raise TokenError(400, "unsupported_grant_type", 70003,
                             f"The app requested an unsupported grant type '{grant}'.")
        basic_id, basic_secret = basic_auth or (None, None)
        client_id = form.get("client_id") or basic_id
        if not client_id:
            raise _missing("client_id")
        name = self._by_client_id.get(client_id.lower())
        if name is None:
            raise TokenError(400, "unauthorized_client", 700016,
                             f"Application with identifier '{client_id}' was not found in the directory "
                             f"'{segment}'. This can happen if the application has not been installed by the "
                             "administrator of the tenant or consented to by any user in the tenant. You may have "
                             "sent your authentication request to the wrong tenant.")
        audience = self._audience(form, v2, segment)
        self._check_credential(C.APPS[name], form, basic_secret=basic_secret, bases=bases, segment=segment)
        return name, self.issue(name, audience, lifetime_s)

    def _check_credential(self, app, form, *, basic_secret, bases, segment):  # pylint: disable=too-many-arguments
        assertion = form.get("client_assertion")
        secret = form.get("client_secret") or basic_secret
        if assertion:
            self._check_assertion(app, assertion, form.get("client_assertion_type"), bases, segment)
        elif secret:
            expected = app.get("client_secret")
            if not expected or not hmac.compare_digest(secret.encode("utf-8"), expected.encode("utf-8")):
                raise TokenError(401, "invalid_client", 7000215,
                                 "Invalid client secret provided. Ensure the secret being sent in the request is the "
                                 f"client secret value, not the client secret ID, for a secret added to app "
                                 f"'{app['client_id']}'.")
        else:
            raise TokenError(401, "invalid_client", 7000218,
                             "The request body must contain the following parameter: 'client_assertion' or "
                             "'client_secret'.")

    @staticmethod
    def _audience(form, v2, segment):
        if not v2:
            resource = form.get("resource")
            if not resource:
                raise _missing("resource")
            for audience in C.ACCEPTED_AUDIENCES:
                if resource.rstrip("/").lower() == audience.lower():
                    return audience
            raise TokenError(400, "invalid_resource", 500011,
                             f"The resource principal named {resource} was not found in the tenant named "
                             f"{segment}. This can happen if the application has not been installed by the "
                             "administrator of the tenant or consented to by any user in the tenant. You might have "
                             "sent your authentication request to the wrong tenant.")
        scope = form.get("scope")
        if not scope:
            raise _missing("scope")
        requested = [s for s in scope.split() if s.lower() not in RESERVED_SCOPES]
        accepted = {s.lower(): s for s in C.ACCEPTED_SCOPES}
        if len(requested) != 1 or requested[0].lower() not in accepted:
            raise TokenError(400, "invalid_scope", 1002012,
                             f"The provided value for scope {scope} is not valid. Client credential flows must "
                             "have a scope value with /.default suffixed to the resource identifier (application "
                             "ID URI).")
        return accepted[requested[0].lower()][:-len("/.default")]

    def _check_assertion(self, app, assertion, assertion_type, bases, segment):
        if not assertion_type:
            raise _missing("client_assertion_type")
        if assertion_type != C.JWT_BEARER:
            raise TokenError(400, "invalid_request", 90014,
                             "The required field 'client_assertion_type' is missing from the credential. Ensure that "
                             "you have all the necessary parameters for the login request.")
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise TokenError(400, "invalid_request", 50027,
                             "JWT token is invalid or malformed.") from None
        # Entra tells a certificate assertion (iss == client id) from a federated token by its issuer.
        if claims.get("iss") == app["client_id"] or "x5t" in header or "x5t#S256" in header:
            self._check_certificate_assertion(app, assertion, header=header, claims=claims, bases=bases, segment=segment)
        else:
            self._check_federated_token(app, assertion, header, claims)

    def _check_certificate_assertion(self, app, assertion, *, header, claims, bases, segment):  # pylint: disable=too-many-arguments
        alg = header.get("alg")
        if alg not in ("RS256", "PS256"):
            raise TokenError(401, "invalid_client", 5002738,
                             f"Invalid JWT token. '{alg}' is not a supported signature algorithm. Supported signing algorithms are: 'RS256, PS256'")
        cert = self.keys.cert_app_cert if app["kind"] == "certificate" else None
        shown = _hex_thumbprint(header.get("x5t") or header.get("x5t#S256") or "")
        # Compare decoded bytes: MSAL sends base64url *with* "=" padding, RFC 7515 without.
        if cert is None or not (
                _hex_thumbprint(header.get("x5t") or "") == self.keys.cert_app_thumbprint
                or _hex_thumbprint(header.get("x5t#S256") or "") == self.keys.cert_app_thumbprint_sha256):
            raise TokenError(401, "invalid_client", 700027,
                             "Client assertion contains an invalid signature. [Reason - The key was not found., "
                             f"Thumbprint of key used by client: '{shown}', Please visit the Azure Portal, Graph "
                             f"Explorer or directly use MS Graph to see configured keys for app Id "
                             f"'{app['client_id']}'.]")
        try:
            jwt.decode(assertion, cert.public_key(), algorithms=[alg],
                       options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                                "verify_aud": False, "verify_iss": False})
        except jwt.InvalidSignatureError:
            raise TokenError(401, "invalid_client", 700027,
                             "Client assertion contains an invalid signature. [Reason - Key was found, but use of "
                             f"the key to verify the signature failed., Thumbprint of key used by client: '{shown}', "
                             f"Found key 'Start={cert.not_valid_before_utc:%m/%d/%Y %H:%M:%S}, "
                             f"End={cert.not_valid_after_utc:%m/%d/%Y %H:%M:%S}']") from None
        except jwt.PyJWTError:
            raise TokenError(400, "invalid_request", 50027, "JWT token is invalid or malformed.") from None
        if claims.get("iss") != app["client_id"] or claims.get("sub") != app["client_id"]:
            raise TokenError(401, "invalid_client", 700021,
                             f"Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at {CERT_DOC} .")
        self._check_lifetime(claims, CERT_DOC)
        audiences = claims.get("aud")
        audiences = audiences if isinstance(audiences, list) else [audiences]
        valid = {f"{base}/{tenant}/oauth2/{version}token"
                 for base in bases for tenant in (C.TENANT_ID, C.TENANT_DOMAIN, segment.lower())
                 for version in ("v2.0/", "")}
        if not any(isinstance(a, str) and a.rstrip("/").lower() in valid for a in audiences):
            raise TokenError(401, "invalid_client", 700023,
                             f"Client assertion audience claim does not match Realm issuer. Review the documentation at {CERT_DOC} .")

    @staticmethod
    def _check_lifetime(claims, doc):
        now = time.time()
        exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat", 0))
        exp = exp if isinstance(exp, (int, float)) else None
        nbf = nbf if isinstance(nbf, (int, float)) else 0
        if exp is None or exp <= now or nbf > now + 300:  # Entra tolerates five minutes of skew on nbf
            raise TokenError(401, "invalid_client", 700024,
                             f"Client assertion is not within its valid time range. Current time: {_iso7(now)}, "
                             f"assertion valid from {_iso7(nbf)}, expiry time of assertion {_iso7(exp or 0)}. Review "
                             f"the documentation at {doc} .")

    def _check_federated_token(self, app, assertion, header, claims):
        issuer, subject, audience = claims.get("iss"), claims.get("sub"), claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        no_match = TokenError(400, "invalid_request", 70021,
                              "No matching federated identity record found for presented assertion. Assertion "
                              f"Issuer: '{issuer}'. Assertion Subject: '{subject}'. Assertion Audience: "
                              f"'{','.join(str(a) for a in audiences)}'. {WIF_DOC}")
        if app["kind"] != "federated" or issuer != app["issuer"]:
            raise no_match
        try:
            if header.get("kid") not in (None, self.keys.idp_kid):
                raise jwt.InvalidSignatureError("unknown kid")
            jwt.decode(assertion, self.keys.idp_key.public_key(), algorithms=["RS256"],
                       options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                                "verify_aud": False, "verify_iss": False})
        except jwt.PyJWTError:
            raise TokenError(401, "invalid_client", 700027,
                             f"Client assertion failed signature validation. [Reason - The key was not found., Issuer: '{issuer}']") from None
        self._check_lifetime(claims, WIF_DOC)
        if app["audience"] not in audiences:
            raise no_match
        if subject != app["subject"]:
            raise TokenError(400, "invalid_request", 700213,
                             f"No matching federated identity record found for presented assertion subject "
                             f"'{subject}'. Check your federated identity credential Subject, Audience and Issuer "
                             f"against the presented assertion. {WIF_DOC}")

    # -- tokens ---------------------------------------------------------------------------------

    def issue(self, name, audience=None, lifetime_s=3599):
        """Sign an app-only access token (v1 format, as Defender receives it)."""
        app = C.APPS[name]
        now = int(time.time())
        uti = b64url(uuid.uuid4().bytes)[:22]
        oid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"emulator-sp:{app['client_id']}"))
        claims = {
            "aud": audience or C.ACCEPTED_AUDIENCES[0],
            "iss": self.issuer,
            "iat": now - 300,   # Entra back-dates iat/nbf by five minutes for clock skew
            "nbf": now - 300,
            "exp": now + int(lifetime_s),
            "aio": b64url(uuid.uuid4().bytes),
            "app_displayname": f"defender-tvm-emulator-{name}",
            "appid": app["client_id"],
            "appidacr": "1" if app["kind"] == "secret" else "2",
            "idp": self.issuer,
            "idtyp": "app",
            "oid": oid,
            "sub": oid,
            "tid": self.tenant_id,
            "uti": uti,
            "ver": "1.0",
        }
        if app["roles"]:  # Entra omits the claim when no application permission is granted
            claims["roles"] = list(app["roles"])
        token = jwt.encode(claims, self.keys.token_signing_key, algorithm="RS256",
                           headers={"kid": self.keys.token_signing_kid, "typ": "JWT"})
        with self._lock:
            self._issued.add(uti)
        return {"token_type": "Bearer", "expires_in": int(lifetime_s), "ext_expires_in": int(lifetime_s),
                "access_token": token}

    def validate(self, token):
        """Return (claims, None) or (None, reason) with reason in missing/invalid/expired/revoked."""
        if not token:
            return None, "missing"
        try:
            claims = jwt.decode(token, self.keys.token_signing_key.public_key(), algorithms=["RS256"],
                                audience=list(C.ACCEPTED_AUDIENCES), issuer=self.issuer,
                                options={"require": ["exp", "nbf", "aud", "iss", "appid", "tid"]})
        except jwt.ExpiredSignatureError:
            return None, "expired"
        except jwt.PyJWTError:
            return None, "invalid"
        if claims.get("tid") != self.tenant_id:
            return None, "invalid"
        with self._lock:
            if claims.get("uti") in self._revoked:
                return None, "revoked"
        return claims, None

    def revoke(self):
        """Invalidate every token issued so far; later tokens stay valid."""
        with self._lock:
            self._revoked |= self._issued
            self._issued = set()
            self.revocations += 1

    def reset(self):
        """Forget revocations (tokens revoked so far become valid again)."""
        with self._lock:
            self._issued |= self._revoked
            self._revoked = set()
            self.revocations = 0

    # -- helpers for tests ----------------------------------------------------------------------

    def mint_federated_token(self, *, subject=C.FEDERATED_SUBJECT, audience=C.FEDERATED_AUDIENCE,
                             issuer=C.FEDERATED_ISSUER, expires_in=86400, key=None):
        """A token from the emulated external IdP (shaped like a GitHub Actions OIDC token)."""
        now = int(time.time())
        issued = now if expires_in > 0 else now + int(expires_in) - 600
        claims = {"jti": str(uuid.uuid4()), "sub": subject, "aud": audience, "iss": issuer,
                  "ref": "refs/heads/main", "repository": "contoso/patching", "repository_owner": "contoso",
                  "event_name": "workflow_dispatch", "nbf": issued, "iat": issued, "exp": now + int(expires_in)}
        return jwt.encode(claims, key or self.keys.idp_key, algorithm="RS256",
                          headers={"kid": self.keys.idp_kid, "typ": "JWT"})

    def make_client_assertion(self, audience, *, client="cert", expires_in=600, algorithm="RS256",  # pylint: disable=too-many-arguments
                              thumbprint="sha1", key=None, issuer=None, subject=None):
        """A certificate client assertion as MSAL builds it (for negative tests)."""
        client_id = C.APPS[client]["client_id"]
        now = int(time.time())
        claims = {"aud": audience, "iss": issuer or client_id, "sub": subject or client_id,
                  "jti": str(uuid.uuid4()), "nbf": min(now, now + int(expires_in) - 600), "iat": now,
                  "exp": now + int(expires_in)}
        if thumbprint == "sha256":
            headers = {"x5t#S256": b64url(bytes.fromhex(self.keys.cert_app_thumbprint_sha256))}
        else:
            headers = {"x5t": b64url(bytes.fromhex(self.keys.cert_app_thumbprint))}
        return jwt.encode(claims, key or self.keys.cert_app_key, algorithm=algorithm, headers=headers)

    @staticmethod
    def is_guid(value):
        """Whether value looks like a GUID (Entra only echoes GUID correlation ids)."""
        return bool(value and GUID_RE.match(value))
