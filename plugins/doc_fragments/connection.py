# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment:
    # The shared options of every module and plugin. Their single definition in code is
    # plugins/module_utils/_options.py; tests/unit keeps the two in step.
    DOCUMENTATION = r'''
options:
  tenant_id:
    description:
      - The Entra ID directory (tenant) ID, or a verified domain such as V(contoso.onmicrosoft.com).
      - Required with app credentials (O(client_secret), O(client_certificate_path) or O(federated_token_file)).
      - Falls back to the environment variable E(MDE_TENANT_ID), then E(AZURE_TENANT_ID).
    type: str
  client_id:
    description:
      - The application (client) ID of the app registration that has the Defender API permissions.
      - Required with app credentials.
      - Falls back to E(MDE_CLIENT_ID), then E(AZURE_CLIENT_ID).
    type: str
  client_secret:
    description:
      - A client secret of the app registration (its value, not its ID).
      - Give exactly one of O(client_secret), O(client_certificate_path) and O(federated_token_file).
      - Falls back to E(MDE_CLIENT_SECRET), then E(AZURE_CLIENT_SECRET).
    type: str
  client_certificate_path:
    description:
      - Path to a certificate registered on the app, either a PEM file holding the private key
        and the certificate, or a PFX/PKCS#12 file. The client assertion is signed with PS256
        and the certificate's SHA-256 thumbprint.
      - Falls back to E(MDE_CLIENT_CERTIFICATE_PATH), then E(AZURE_CLIENT_CERTIFICATE_PATH).
    type: path
  client_certificate_password:
    description:
      - Password of the private key in O(client_certificate_path), if it is encrypted.
      - Falls back to E(MDE_CLIENT_CERTIFICATE_PASSWORD), then E(AZURE_CLIENT_CERTIFICATE_PASSWORD).
    type: str
  federated_token_file:
    description:
      - Path to a file holding a JWT from a trusted identity provider (workload identity
        federation, for GitHub Actions, Azure DevOps, GitLab or Kubernetes). It is sent as the client
        assertion and read again at each token request, so a rotated file is picked up.
      - Falls back to E(MDE_FEDERATED_TOKEN_FILE), then E(AZURE_FEDERATED_TOKEN_FILE).
    type: path
  access_token:
    description:
      - A pre-acquired access token for the Defender API. Entra ID is not contacted, and the
        app credential options are ignored.
      - The token must be issued for the scope of the chosen O(cloud) (see O(scope)).
      - Falls back to E(MDE_ACCESS_TOKEN).
    type: str
  cloud:
    description:
      - The Microsoft cloud, which picks the default O(authority_url), O(api_url) and O(scope).
      - V(public) uses V(https://login.microsoftonline.com), V(https://api.security.microsoft.com)
        and the scope V(https://api.securitycenter.microsoft.com/.default) (the audience of the
        documented app-only flow, accepted on the current and the legacy API host).
      - V(gcc) signs in on V(https://login.microsoftonline.com) and calls
        V(https://api-gcc.securitycenter.microsoft.us).
      - V(gcc_high) and V(dod) sign in on V(https://login.microsoftonline.us) and call
        V(https://api-gov.securitycenter.microsoft.us).
      - For the US Government clouds Microsoft does not document the token scope; the default
        is the API host followed by V(/.default), as Microsoft's own msticpy does. Override it
        with O(scope) if your tenant needs another.
      - Falls back to E(MDE_CLOUD).
    type: str
    default: public
    choices: [dod, gcc, gcc_high, public]
  api_url:
    description:
      - Base URL of the Defender API, without V(/api). Overrides the O(cloud) default, for
        example with a regional host such as V(https://eu.api.security.microsoft.com).
      - Falls back to E(MDE_API_URL).
    type: str
  authority_url:
    description:
      - The Entra ID authority host, without the tenant. Overrides the O(cloud) default. A
        bare host name gets V(https://). For a host other than the cloud's own, MSAL's
        instance discovery is turned off.
      - Falls back to E(MDE_AUTHORITY_URL), then E(AZURE_AUTHORITY_HOST).
    type: str
  scope:
    description:
      - The OAuth scope to request. Overrides the O(cloud) default.
      - Falls back to E(MDE_SCOPE).
    type: str
  validate_certs:
    description:
      - Verify the TLS certificates of the API and of Entra ID. Turn it off only for tests.
      - Falls back to E(MDE_VALIDATE_CERTS).
    type: bool
    default: true
  ca_path:
    description:
      - A CA bundle (PEM) to verify the API and Entra ID with, for a TLS-inspecting proxy or a
        private endpoint. It wins over E(REQUESTS_CA_BUNDLE) and E(CURL_CA_BUNDLE).
      - Falls back to E(MDE_CA_PATH).
    type: path
  timeout:
    description:
      - Seconds to wait for a connection or a response, per request.
      - Falls back to E(MDE_TIMEOUT).
    type: float
    default: 30
  max_concurrency:
    description:
      - How many API requests may be in flight at once when several IDs are queried (1 to 64).
      - Falls back to E(MDE_MAX_CONCURRENCY).
    type: int
    default: 8
  requests_per_minute:
    description:
      - Client-side call budget. No 60-second window holds more API requests than this, retries
        included; up to the budget, requests are not delayed. The Defender API terms allow 100
        calls per minute per app and tenant, so lower it if other clients share the app. V(0)
        turns pacing off.
      - Falls back to E(MDE_REQUESTS_PER_MINUTE).
    type: int
    default: 100
  max_retries:
    description:
      - How often a request is retried after HTTP 429 (waiting as the server's C(Retry-After)
        says), after HTTP 500, 502, 503 or 504, after a connection error, or after an
        unparseable body (capped exponential backoff). A 401 gets one fresh token on top.
      - Falls back to E(MDE_MAX_RETRIES).
    type: int
    default: 5
requirements:
  - requests
  - msal >= 1.35.0 (not needed with O(access_token))
  - cryptography (for O(client_certificate_path); installed with msal)
notes:
  - Create an app registration in Entra ID, add the application permissions of the
    C(WindowsDefenderATP) API this plugin names, and grant admin consent.
  - Secrets and tokens are never returned or logged.
  - Where an option comes from, the first found winning - the task's options (its arguments, and
    C(module_defaults) for C(group/defender.tvm.all); for a lookup its keyword arguments), then,
    for a lookup or the M(defender.tvm.kb_plan) action, the C(ansible_mde_*) variables, then the
    C(MDE_*) environment variables, then the C(AZURE_*) ones, then, for a lookup, the
    C([defender_tvm]) section of C(ansible.cfg), then the default.
  - The credential is taken whole from the first of those sources that gives one, and
    credential options from the other sources are ignored - O(access_token), or O(client_secret),
    or O(client_certificate_path) with its O(client_certificate_password) (from the same source,
    or from a more explicit one), or O(federated_token_file). So an explicit
    O(client_certificate_path) wins over an exported E(MDE_CLIENT_SECRET). Within that one source
    O(access_token) wins over app credentials, and two app credentials are an error.
'''

    # Extra sources for plugins (lookups read ansible.cfg and variables; modules cannot).
    # For plugins the LAST environment variable found wins, so the MDE_* names come last.
    PLUGINS = r'''
options:
  tenant_id:
    env: [{name: AZURE_TENANT_ID}, {name: MDE_TENANT_ID}]
    ini: [{section: defender_tvm, key: tenant_id}]
    vars: [{name: ansible_mde_tenant_id}]
  client_id:
    env: [{name: AZURE_CLIENT_ID}, {name: MDE_CLIENT_ID}]
    ini: [{section: defender_tvm, key: client_id}]
    vars: [{name: ansible_mde_client_id}]
  client_secret:
    env: [{name: AZURE_CLIENT_SECRET}, {name: MDE_CLIENT_SECRET}]
    ini: [{section: defender_tvm, key: client_secret}]
    vars: [{name: ansible_mde_client_secret}]
  client_certificate_path:
    env: [{name: AZURE_CLIENT_CERTIFICATE_PATH}, {name: MDE_CLIENT_CERTIFICATE_PATH}]
    ini: [{section: defender_tvm, key: client_certificate_path}]
    vars: [{name: ansible_mde_client_certificate_path}]
  client_certificate_password:
    env: [{name: AZURE_CLIENT_CERTIFICATE_PASSWORD}, {name: MDE_CLIENT_CERTIFICATE_PASSWORD}]
    ini: [{section: defender_tvm, key: client_certificate_password}]
    vars: [{name: ansible_mde_client_certificate_password}]
  federated_token_file:
    env: [{name: AZURE_FEDERATED_TOKEN_FILE}, {name: MDE_FEDERATED_TOKEN_FILE}]
    ini: [{section: defender_tvm, key: federated_token_file}]
    vars: [{name: ansible_mde_federated_token_file}]
  access_token:
    env: [{name: MDE_ACCESS_TOKEN}]
    ini: [{section: defender_tvm, key: access_token}]
    vars: [{name: ansible_mde_access_token}]
  cloud:
    env: [{name: MDE_CLOUD}]
    ini: [{section: defender_tvm, key: cloud}]
    vars: [{name: ansible_mde_cloud}]
  api_url:
    env: [{name: MDE_API_URL}]
    ini: [{section: defender_tvm, key: api_url}]
    vars: [{name: ansible_mde_api_url}]
  authority_url:
    env: [{name: AZURE_AUTHORITY_HOST}, {name: MDE_AUTHORITY_URL}]
    ini: [{section: defender_tvm, key: authority_url}]
    vars: [{name: ansible_mde_authority_url}]
  scope:
    env: [{name: MDE_SCOPE}]
    ini: [{section: defender_tvm, key: scope}]
    vars: [{name: ansible_mde_scope}]
  validate_certs:
    env: [{name: MDE_VALIDATE_CERTS}]
    ini: [{section: defender_tvm, key: validate_certs}]
    vars: [{name: ansible_mde_validate_certs}]
  ca_path:
    env: [{name: MDE_CA_PATH}]
    ini: [{section: defender_tvm, key: ca_path}]
    vars: [{name: ansible_mde_ca_path}]
  timeout:
    env: [{name: MDE_TIMEOUT}]
    ini: [{section: defender_tvm, key: timeout}]
    vars: [{name: ansible_mde_timeout}]
  max_concurrency:
    env: [{name: MDE_MAX_CONCURRENCY}]
    ini: [{section: defender_tvm, key: max_concurrency}]
    vars: [{name: ansible_mde_max_concurrency}]
  requests_per_minute:
    env: [{name: MDE_REQUESTS_PER_MINUTE}]
    ini: [{section: defender_tvm, key: requests_per_minute}]
    vars: [{name: ansible_mde_requests_per_minute}]
  max_retries:
    env: [{name: MDE_MAX_RETRIES}]
    ini: [{section: defender_tvm, key: max_retries}]
    vars: [{name: ansible_mde_max_retries}]
'''
