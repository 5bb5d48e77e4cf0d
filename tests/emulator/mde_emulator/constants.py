"""Fixed identities of the emulated tenant, its apps and the files in the state dir.

The values are constants (not generated) so that test configurations, docs and
CI scripts can name them without reading ``emulator.json`` first.
"""

TENANT_ID = "4d1f8a62-93c5-4b7e-a0d2-6e5c8f9b1a37"
# Entra also accepts the tenant's initial domain wherever the GUID is accepted.
TENANT_DOMAIN = "contoso-emulator.onmicrosoft.com"

# Scopes the Defender resource accepts (commercial, GCC, GCC High/DoD and the
# legacy "windowsatpservice" app ID URI used by the docs' curl example).
DEFAULT_SCOPE = "https://api.securitycenter.microsoft.com/.default"
ACCEPTED_SCOPES = (
    DEFAULT_SCOPE,
    "https://api-gcc.securitycenter.microsoft.us/.default",
    "https://api-gov.securitycenter.microsoft.us/.default",
    "https://securitycenter.onmicrosoft.com/windowsatpservice/.default",
)
# The access token's "aud" is the scope without "/.default" (v1 "resource" too).
ACCEPTED_AUDIENCES = tuple(s[:-len("/.default")] for s in ACCEPTED_SCOPES)

ROLE_SOFTWARE = "Software.Read.All"
ROLE_MACHINE = "Machine.Read.All"
ROLE_MACHINE_RW = "Machine.ReadWrite.All"
ROLE_VULNERABILITY = "Vulnerability.Read.All"

SECRET_CLIENT_ID = "0b6e4c1a-5f2d-4e8b-9a73-1c2d3e4f5a60"
SECRET_CLIENT_SECRET = "emU8Q~tvmSecret.Software-Machine_Read0001"

CERT_CLIENT_ID = "1c7f5d2b-6a3e-4f9c-8b84-2d3e4f5a6b71"
CERT_PASSWORD = "emulator-cert-password"

FEDERATED_CLIENT_ID = "2d8a6e3c-7b4f-4a0d-9c95-3e4f5a6b7c82"
FEDERATED_ISSUER = "https://oidc.emulator.invalid"
FEDERATED_SUBJECT = "repo:contoso/patching:ref:refs/heads/main"
FEDERATED_AUDIENCE = "api://AzureADTokenExchange"

NOPERM_CLIENT_ID = "3e9b7f4d-8c5a-4b1e-8da6-4f5a6b7c8d93"
NOPERM_CLIENT_SECRET = "emU8Q~noPermissionsSecret.Value-0000000002"

SOFTWAREONLY_CLIENT_ID = "4fac8a5e-9d6b-4c2f-9eb7-5a6b7c8d9ea4"
SOFTWAREONLY_CLIENT_SECRET = "emU8Q~softwareOnlySecret.Value-000000003"

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

# File names inside the state dir.
CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"
SERVER_CERT_FILE = "server.pem"
SERVER_KEY_FILE = "server.key"
TOKEN_SIGNING_KEY_FILE = "token-signing.key"
CERT_APP_PEM_FILE = "cert-app.pem"
CERT_APP_ENCRYPTED_PEM_FILE = "cert-app-encrypted.pem"
CERT_APP_PFX_FILE = "cert-app.pfx"
CERT_APP_CERT_FILE = "cert-app.crt"
CERT_APP_PASSWORD_FILE = "cert-app.password"
FEDERATED_IDP_KEY_FILE = "federated-idp.key"
FEDERATED_TOKEN_FILE = "federated-token.jwt"
INFO_FILE = "emulator.json"

# name -> registration. "kind" decides which credential the token endpoint accepts.
APPS = {
    "secret": {
        "client_id": SECRET_CLIENT_ID,
        "kind": "secret",
        "client_secret": SECRET_CLIENT_SECRET,
        "roles": [ROLE_SOFTWARE, ROLE_MACHINE, ROLE_VULNERABILITY],
    },
    "cert": {
        "client_id": CERT_CLIENT_ID,
        "kind": "certificate",
        "roles": [ROLE_SOFTWARE, ROLE_MACHINE, ROLE_VULNERABILITY],
    },
    "federated": {
        "client_id": FEDERATED_CLIENT_ID,
        "kind": "federated",
        "roles": [ROLE_SOFTWARE, ROLE_MACHINE, ROLE_VULNERABILITY],
        "issuer": FEDERATED_ISSUER,
        "subject": FEDERATED_SUBJECT,
        "audience": FEDERATED_AUDIENCE,
    },
    "noperm": {
        "client_id": NOPERM_CLIENT_ID,
        "kind": "secret",
        "client_secret": NOPERM_CLIENT_SECRET,
        "roles": [],
    },
    "softwareonly": {
        "client_id": SOFTWAREONLY_CLIENT_ID,
        "kind": "secret",
        "client_secret": SOFTWAREONLY_CLIENT_SECRET,
        "roles": [ROLE_SOFTWARE],
    },
}

# Route names used in stats["api_by_route"].
API_ROUTES = (
    "software_list",
    "software",
    "software_missing_kbs",
    "software_machine_references",
    "machine_list",
    "machine",
    "machine_missing_kbs",
    "software_vulnerabilities_by_machine",
    "software_vulnerabilities_export",
    "software_vulnerability_changes_by_machine",
)
# The routes with a rate limit of their own (see faults.py): JSON export routes, files route.
EXPORT_JSON_ROUTES = ("software_vulnerabilities_by_machine", "software_vulnerability_changes_by_machine")
EXPORT_FILES_ROUTE = "software_vulnerabilities_export"
EXPORT_DIR = "export"  # in the state dir: the generated export (export.py)
