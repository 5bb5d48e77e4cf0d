# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Errors that tell the user what to fix.

FOR INTERNAL COLLECTION USE ONLY; the API may change in any release.

Every message here is shown to users as is: it must never contain a secret, a token or a
traceback. Server texts are included only from documented error fields.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re


class DefenderError(Exception):
    """Base class; ``str(err)`` is the user-facing message."""


class ConfigurationError(DefenderError):
    """Bad or missing options, found before any network call."""


class AuthenticationError(DefenderError):
    """Entra ID refused the token request, or the API refused the token."""


class PermissionDeniedError(DefenderError):
    """HTTP 403: the app lacks an application permission."""


class NotFoundError(DefenderError):
    """HTTP 404 for an ID."""

    def __init__(self, message, resource_id=None):
        super(NotFoundError, self).__init__(message)
        self.resource_id = resource_id


class TransportError(DefenderError):
    """Network, TLS, throttling or server failures that outlived the retries."""


class ResponseError(DefenderError):
    """The API answered something we cannot use."""


class DownloadBrokenError(TransportError):
    """A file download stopped before its end (connection lost, reset or timed out): read it again."""


class SasExpiredError(DefenderError):
    """A file of the vulnerability export refused its SAS link (HTTP 403): ask for fresh links."""


# What to do about the AADSTS codes a client-credentials caller meets most.
# Codes from https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes
AADSTS_HINTS = {
    90002: "check tenant_id: the tenant does not exist in this cloud (see the cloud option)",
    700016: "check client_id: the application is not registered in tenant_id",
    7000215: "check client_secret: send the secret's value, not its ID",
    7000222: "the client secret has expired: create a new one on the app registration",
    700027: "the certificate is not registered on the app registration, or client_certificate_path holds another one",
    700024: "the federated token has expired: refresh federated_token_file",
    70021: "no federated credential on the app matches the token's issuer, subject and audience",
    700211: "no federated credential on the app matches the token's issuer",
    700213: "no federated credential on the app matches the token's subject",
    700212: "no federated credential on the app matches the token's audience",
    1002012: "check scope (or cloud): the requested scope is not valid",
    70011: "check scope (or cloud): the requested scope is not valid",
    500011: "the WindowsDefenderATP API is not available in this tenant, or the scope names another resource",
    7000218: "give a credential: client_secret, client_certificate_path or federated_token_file",
    700023: "check authority_url and cloud: the tenant belongs to another cloud",
}

_AADSTS_RE = re.compile(r'AADSTS(\d+)')


def entra_error_message(result):
    """Turn an MSAL error dict (the token endpoint's JSON) into one clear line."""
    error = result.get('error') or 'unknown_error'
    description = (result.get('error_description') or '').strip()
    # Entra appends "Trace ID: ... Correlation ID: ... Timestamp: ..." on new lines.
    first_line = description.splitlines()[0].strip() if description else ''
    codes = list(result.get('error_codes') or [])
    if not codes:
        codes = [int(c) for c in _AADSTS_RE.findall(first_line)]
    message = "Entra ID refused the token request (%s)" % error
    if first_line:
        message += ": %s" % first_line.rstrip('.')  # Entra's sentence ends in a full stop; so does ours
    hint = next((AADSTS_HINTS[c] for c in codes if c in AADSTS_HINTS), None)
    if hint:
        message += ". Fix: %s" % hint
    if result.get('correlation_id'):
        message += " (correlation ID %s)" % result['correlation_id']
    return message


def api_error_fields(response):
    """``(code, message, target)`` from a Defender error body, tolerating other bodies."""
    try:
        body = response.json()
    except ValueError:
        return None, None, None
    error = body.get('error') if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None, None
    return error.get('code'), error.get('message'), error.get('target')


def describe_api_error(response, what):
    """A one-line description of a failed API response, with the server's own code and message."""
    code, message, target = api_error_fields(response)
    text = "%s failed with HTTP %s" % (what, response.status_code)
    if code or message:
        text += " (%s%s%s)" % (code or '', ': ' if code and message else '', message or '')
    if target:
        text += " [request ID %s]" % target
    return text
