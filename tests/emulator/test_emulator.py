"""Tests of the Defender/Entra emulator over real HTTPS, with requests and MSAL.

Run, from the root of a clone: python -m pytest tests/emulator -q (conftest.py puts the package on sys.path
and holds the shared fixtures: emu, clock, http; emulator_helpers.py the shared helpers)
The machine may export REQUESTS_CA_BUNDLE, which overrides a session's verify;
every request here therefore passes verify= itself.
"""
# pylint: disable=redefined-outer-name,missing-function-docstring

import concurrent.futures
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse

import jwt
import msal
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from emulator_helpers import HERE, VerifyingSession, api, assert_api_error, bearer
from mde_emulator import (CERT_PASSWORD, DEFAULT_SCOPE, FEDERATED_CLIENT_ID, SECRET_CLIENT_ID, SECRET_CLIENT_SECRET,
                          TENANT_DOMAIN, TENANT_ID, Emulator)
from mde_emulator import data as data_module
from mde_emulator.data import Dataset

WIN10 = "microsoft-_-windows_10"


def token_post(http, emu, data, tenant=TENANT_ID, version="v2.0/"):
    return http.post(f"{emu.url}/{tenant}/oauth2/{version}token", data=data)


def secret_form(**overrides):
    form = {"grant_type": "client_credentials", "client_id": SECRET_CLIENT_ID, "client_secret": SECRET_CLIENT_SECRET,
            "scope": DEFAULT_SCOPE}
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


def msal_app(emu, client_id, credential):
    return msal.ConfidentialClientApplication(client_id, client_credential=credential, authority=emu.authority,
                                              instance_discovery=False, http_client=VerifyingSession(emu.ca_path),
                                              token_cache=msal.TokenCache())


def assert_entra_error(response, status, error, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "error_description", "error_codes", "timestamp", "trace_id", "correlation_id",
                         "error_uri"}
    assert body["error"] == error and body["error_codes"] == [code]
    assert re.match(r"^AADSTS%d: .+\r\nTrace ID: [0-9a-f-]{36}\r\nCorrelation ID: [0-9a-f-]{36}\r\n"
                    r"Timestamp: \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$" % code, body["error_description"], re.S)
    assert body["error_uri"].endswith(f"?code={code}")
    return body


# -- start-up, TLS, state dir ------------------------------------------------------------------------


def test_state_dir_and_info(emu, state_dir):
    names = set(os.listdir(state_dir))
    assert {"ca.pem", "server.pem", "server.key", "cert-app.pem", "cert-app-encrypted.pem", "cert-app.pfx",
            "federated-token.jwt", "emulator.json"} <= names
    with open(os.path.join(state_dir, "emulator.json"), encoding="utf-8") as handle:
        info = json.load(handle)
    assert info["url"] == emu.url == f"https://127.0.0.1:{emu.port}"
    assert info["ca_path"] == emu.ca_path and info["tenant_id"] == TENANT_ID == emu.tenant_id
    assert set(info["clients"]) == {"secret", "cert", "federated", "noperm", "softwareonly"}
    assert info["clients"]["cert"]["password"] == CERT_PASSWORD
    assert info["pid"] == os.getpid()
    assert oct(os.stat(os.path.join(state_dir, "server.key")).st_mode & 0o777) == "0o600"


def test_state_is_reused_and_stop_closes_socket(state_dir, tmp_path):
    with open(os.path.join(state_dir, "ca.pem"), "rb") as handle:
        ca_before = handle.read()
    second = Emulator(state_dir).start()
    port = second.port
    with VerifyingSession(second.ca_path) as session:
        # localhost is in the certificate too
        assert session.get(
            f"https://localhost:{port}/{TENANT_ID}/v2.0/.well-known/openid-configuration").status_code == 200
    second.stop()
    with open(os.path.join(state_dir, "ca.pem"), "rb") as handle:
        assert handle.read() == ca_before
    with pytest.raises(requests.ConnectionError):
        requests.get(f"https://127.0.0.1:{port}/", verify=second.ca_path, timeout=2)
    with pytest.raises(ValueError):
        Emulator(str(tmp_path), bogus_fault=1)


def test_keep_alive_reuses_one_tls_connection(emu, http):
    headers = bearer(emu)
    for dummy in range(5):
        assert http.get(emu.url + "/api/Software", headers=headers).status_code == 200
    # An admin poll on its own connection counts as a connection but not as client traffic.
    stats = requests.get(emu.url + "/_emulator/stats", verify=emu.ca_path, timeout=5).json()
    assert stats["connections"] == 2 and stats["client_connections"] == 1
    assert emu.stats()["connections"] == 2 and emu.stats()["client_connections"] == 1


# -- Entra: discovery and tokens ---------------------------------------------------------------------


def test_oidc_discovery(emu, http):
    doc = http.get(f"{emu.url}/{TENANT_ID}/v2.0/.well-known/openid-configuration").json()
    assert doc["token_endpoint"] == f"{emu.url}/{TENANT_ID}/oauth2/v2.0/token"
    assert doc["authorization_endpoint"].startswith(emu.url + "/" + TENANT_ID + "/")
    assert "private_key_jwt" in doc["token_endpoint_auth_methods_supported"]
    keys = http.get(doc["jwks_uri"]).json()["keys"]
    assert keys[0]["kty"] == "RSA"
    alias = http.get(f"{emu.url}/{TENANT_DOMAIN}/v2.0/.well-known/openid-configuration").json()
    assert alias["token_endpoint"] == doc["token_endpoint"]
    assert_entra_error(http.get(emu.url + "/nosuchtenant/v2.0/.well-known/openid-configuration"),
                       400, "invalid_tenant", 90002)
    assert emu.stats()["oidc_requests"] == 3


def test_msal_client_secret(emu, http):
    result = msal_app(emu, SECRET_CLIENT_ID, SECRET_CLIENT_SECRET).acquire_token_for_client([DEFAULT_SCOPE])
    assert result["token_source"] == "identity_provider" and result["token_type"] == "Bearer"
    assert result["expires_in"] == 3599
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "https://api.securitycenter.microsoft.com"
    assert claims["iss"] == f"https://sts.windows.net/{TENANT_ID}/" and claims["tid"] == TENANT_ID
    assert claims["appid"] == SECRET_CLIENT_ID
    assert claims["roles"] == ["Software.Read.All", "Machine.Read.All", "Vulnerability.Read.All"]
    assert claims["exp"] - claims["iat"] >= 3599 and claims["nbf"] <= time.time()
    response = http.get(emu.url + "/api/Software", headers={"Authorization": "Bearer " + result["access_token"]})
    assert response.status_code == 200
    stats = emu.stats()
    assert stats["token_requests"] == 1 and stats["token_requests_by_client"] == {"secret": 1}
    assert stats["oidc_requests"] == 1 and stats["api_requests"] == 1


@pytest.mark.parametrize("form", ["pfx", "pem_thumbprint", "encrypted_pem"])
def test_msal_certificate(emu, form):
    cert = emu.clients["cert"]
    if form == "pfx":
        credential = {"private_key_pfx_path": cert["pfx_path"], "passphrase": cert["password"]}
    else:
        path = cert["certificate_path"] if form == "pem_thumbprint" else cert["encrypted_key_path"]
        with open(path, encoding="utf-8") as handle:
            credential = {"private_key": handle.read(), "thumbprint": cert["thumbprint"]}
        if form == "encrypted_pem":
            credential["passphrase"] = cert["password"]
    result = msal_app(emu, cert["client_id"], credential).acquire_token_for_client([DEFAULT_SCOPE])
    assert "access_token" in result, result
    assert jwt.decode(result["access_token"], options={"verify_signature": False})["appid"] == cert["client_id"]


def test_msal_federated_token_file(emu):
    fed = emu.clients["federated"]

    def assertion():
        with open(fed["token_file"], encoding="utf-8") as handle:
            return handle.read().strip()

    claims = jwt.decode(assertion(), options={"verify_signature": False})
    assert claims["iss"] == fed["issuer"] and claims["sub"] == fed["subject"] and claims["aud"] == fed["audience"]
    assert 86000 < claims["exp"] - time.time() <= 86400
    result = msal_app(emu, FEDERATED_CLIENT_ID, {"client_assertion": assertion}).acquire_token_for_client(
        [DEFAULT_SCOPE])
    assert "access_token" in result, result


def test_msal_reports_entra_errors(emu):
    wrong = msal_app(emu, SECRET_CLIENT_ID, "not-the-secret").acquire_token_for_client([DEFAULT_SCOPE])
    assert wrong["error"] == "invalid_client" and wrong["error_codes"] == [7000215]
    cert = emu.clients["cert"]
    with open(cert["certificate_path"], encoding="utf-8") as handle:
        credential = {"private_key": handle.read(), "thumbprint": "AB" * 20}
    unknown_key = msal_app(emu, cert["client_id"], credential).acquire_token_for_client([DEFAULT_SCOPE])
    assert unknown_key["error_codes"] == [700027] and "The key was not found" in unknown_key["error_description"]


def _other_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _entra_error_cases(emu):
    cert_id = emu.clients["cert"]["client_id"]

    def assertion(**kwargs):
        return {"grant_type": "client_credentials", "client_id": cert_id, "scope": DEFAULT_SCOPE,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": emu.make_client_assertion(**kwargs)}

    def federated(**kwargs):
        return {"grant_type": "client_credentials", "client_id": FEDERATED_CLIENT_ID, "scope": DEFAULT_SCOPE,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": emu.mint_federated_token(**kwargs)}

    return {
        "unknown_tenant": ("nosuchtenant", secret_form(), 400, "invalid_request", 90002),
        "unknown_client": (TENANT_ID, secret_form(client_id="00000000-0000-0000-0000-000000000001"), 400,
                           "unauthorized_client", 700016),
        "wrong_secret": (TENANT_ID, secret_form(client_secret="nope"), 401, "invalid_client", 7000215),
        "bad_signature": (TENANT_ID, assertion(key=_other_key()), 401, "invalid_client", 700027),
        "sha256_thumbprint_bad_signature": (TENANT_ID, assertion(key=_other_key(), algorithm="PS256",
                                                                 thumbprint="sha256"), 401, "invalid_client", 700027),
        "expired_assertion": (TENANT_ID, assertion(expires_in=-60), 401, "invalid_client", 700024),
        "assertion_wrong_audience": (TENANT_ID, assertion(audience="https://login.microsoftonline.com/x/oauth2/v2.0/"
                                                                   "token"), 401, "invalid_client", 700023),
        "assertion_wrong_issuer": (TENANT_ID, assertion(issuer=SECRET_CLIENT_ID), 401, "invalid_client", 700021),
        "federated_wrong_issuer": (TENANT_ID, federated(issuer="https://token.actions.githubusercontent.com"), 400,
                                   "invalid_request", 70021),
        "federated_wrong_audience": (TENANT_ID, federated(audience="api://other"), 400, "invalid_request", 70021),
        "federated_wrong_subject": (TENANT_ID, federated(subject="repo:contoso/patching:ref:refs/heads/dev"), 400,
                                    "invalid_request", 700213),
        "federated_expired": (TENANT_ID, federated(expires_in=-60), 401, "invalid_client", 700024),
        "invalid_scope": (TENANT_ID, secret_form(scope="https://api.securitycenter.microsoft.com"), 400,
                          "invalid_scope", 1002012),
        "missing_credential": (TENANT_ID, secret_form(client_secret=None), 401, "invalid_client", 7000218),
        "unsupported_grant": (TENANT_ID, secret_form(grant_type="password"), 400, "unsupported_grant_type", 70003),
        "missing_grant": (TENANT_ID, secret_form(grant_type=None), 400, "invalid_request", 900144),
    }


def test_entra_error_codes(emu, http):
    cases = _entra_error_cases(emu)
    for name, (tenant, form, status, error, code) in cases.items():
        response = token_post(http, emu, form, tenant=tenant)
        try:
            assert_entra_error(response, status, error, code)
        except AssertionError as exc:
            raise AssertionError(f"case {name}: {exc}") from exc
    assert emu.stats()["token_requests"] == len(cases)


def test_federated_signature_must_come_from_the_idp(emu, http):
    forged = jwt.encode(jwt.decode(emu.mint_federated_token(), options={"verify_signature": False}), _other_key(),
                        algorithm="RS256")
    form = {"grant_type": "client_credentials", "client_id": FEDERATED_CLIENT_ID, "scope": DEFAULT_SCOPE,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": forged}
    assert_entra_error(token_post(http, emu, form), 401, "invalid_client", 700027)


def test_entra_echoes_correlation_id_and_other_token_forms(emu, http):
    correlation = "0f1e2d3c-4b5a-4968-8776-655443322110"
    response = http.post(emu.token_endpoint, data=secret_form(client_secret="x"),
                         headers={"client-request-id": correlation})
    assert assert_entra_error(response, 401, "invalid_client", 7000215)["correlation_id"] == correlation
    # v1 endpoint with "resource", and client_secret_basic
    v1 = token_post(http, emu, {"grant_type": "client_credentials", "client_id": SECRET_CLIENT_ID,
                                "client_secret": SECRET_CLIENT_SECRET,
                                "resource": "https://api.securitycenter.microsoft.com"}, version="")
    assert v1.status_code == 200, v1.text
    basic = http.post(emu.token_endpoint, data={"grant_type": "client_credentials", "scope": DEFAULT_SCOPE},
                      auth=(SECRET_CLIENT_ID, SECRET_CLIENT_SECRET))
    assert basic.status_code == 200, basic.text
    for scope in ("https://api-gov.securitycenter.microsoft.us/.default",
                  "https://securitycenter.onmicrosoft.com/windowsatpservice/.default"):
        answer = token_post(http, emu, secret_form(scope=scope))
        token = answer.json()["access_token"]
        assert api(http, emu, "/api/Software", headers={"Authorization": "Bearer " + token}).status_code == 200
    emu.configure(token_lifetime_s=120)
    assert token_post(http, emu, secret_form()).json()["expires_in"] == 120


# -- Defender API: auth, errors, routing ---------------------------------------------------------------


def test_api_401(emu, http):
    url = emu.url + "/api/Software/" + WIN10 + "/getmissingkbs"
    assert_api_error(http.get(url), 401, "Unauthorized")
    assert_api_error(http.get(url, headers={"Authorization": "Bearer not.a.jwt"}), 401, "Unauthorized")
    assert_api_error(http.get(url, headers=bearer(emu, lifetime_s=-30)), 401, "Unauthorized",
                     "The access token has expired.")
    # A token signed by someone else, even with the right claims, is refused.
    claims = jwt.decode(emu.issue_token()["access_token"], options={"verify_signature": False})
    forged = jwt.encode(claims, _other_key(), algorithm="RS256")
    assert_api_error(http.get(url, headers={"Authorization": "Bearer " + forged}), 401, "Unauthorized")
    assert emu.stats()["status_counts"] == {"401": 4}


def test_api_403_names_the_missing_permission(emu, http):
    response = api(http, emu, "/api/Software/" + WIN10 + "/getmissingkbs", client="noperm")
    assert_api_error(response, 403, "Forbidden", "The application does not have any of the required application "
                                                 "permissions (Software.Read.All) to access the resource.")
    for path in ("/api/machines", "/api/machines/ws-0001.contoso.local"):
        response = api(http, emu, path, client="softwareonly")
        assert_api_error(response, 403, "Forbidden")
        assert "Machine.Read.All" in response.json()["error"]["message"]
    mid = next(iter(emu.data["machines"]))
    assert api(http, emu, f"/api/machines/{mid}/getmissingkbs", client="softwareonly").status_code == 200
    assert api(http, emu, "/api/Software", client="softwareonly").status_code == 200


def test_api_404(emu, http):
    assert_api_error(api(http, emu, "/api/Software/nope-_-nothing/getmissingkbs"), 404, "ResourceNotFound",
                     "Software nope-_-nothing was not found")
    assert_api_error(api(http, emu, "/api/machines/ws-9999.contoso.local"), 404, "ResourceNotFound",
                     "Machine ws-9999.contoso.local was not found")
    assert_api_error(api(http, emu, "/api/machines/ws-0001.contoso.local/getmissingkbs"), 404, "ResourceNotFound")
    assert_api_error(api(http, emu, f"/api/Software/{WIN10}/vulnerabilities"), 404, "NotFound")
    assert emu.stats()["api_by_route"]["unknown"] == 1


def test_encoded_path_segments(emu, http):
    response = api(http, emu, "/api/Software/notepad_plus_plus-_-notepad%2B%2B")
    assert response.status_code == 200 and response.json()["name"] == "notepad++"
    assert api(http, emu, "/api/Software/notepad_plus_plus-_-notepad++/getmissingkbs").json()["value"] == []
    response = api(http, emu, "/api/Software/x%2F..%2Fmachines")
    assert_api_error(response, 404, "ResourceNotFound", "Software x/../machines was not found")
    response = api(http, emu, "/api/Software/microsoft-_-.net_framework/getmissingkbs")
    assert response.status_code == 200 and response.json()["value"]
    log = emu.stats()["requests"]
    assert [r["raw_path"] for r in log][:3] == [
        "/api/Software/notepad_plus_plus-_-notepad%2B%2B",
        "/api/Software/notepad_plus_plus-_-notepad++/getmissingkbs",
        "/api/Software/x%2F..%2Fmachines"]
    assert [r["route"] for r in log][:3] == ["software", "software_missing_kbs", "software"]


def test_routes_are_case_insensitive_and_versioned(emu, http):
    expected = emu.data["software"][WIN10]["missing_kbs"]
    for path in ("/api/Software/%s/getmissingkbs", "/api/v1.0/SOFTWARE/%s/GetMissingKbs",
                 "/API/software/%s/getMissingKBs/"):
        response = api(http, emu, path % WIN10)
        assert response.status_code == 200 and response.json()["value"] == expected
    assert emu.stats()["api_by_route"]["software_missing_kbs"] == 3


def test_entities_and_contexts(emu, http):
    body = api(http, emu, "/api/Software/" + WIN10).json()
    assert body["@odata.context"] == emu.url + "/api/$metadata#Software/$entity"
    assert set(body) == {"@odata.context", "id", "name", "vendor", "weaknesses", "publicExploit", "activeAlert",
                         "exposedMachines", "impactScore"}
    kbs = api(http, emu, f"/api/Software/{WIN10}/getmissingkbs").json()
    assert kbs["@odata.context"].endswith("#Collection(microsoft.windowsDefenderATP.api.PublicProductFixDto)")
    for item in kbs["value"]:
        assert set(item) == {"id", "name", "productsNames", "url", "machineMissedOn", "cveAddressed"}
        assert re.match(r"^\d{7}$", item["id"])
        assert item["url"] == "https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB" + item["id"]
    refs = api(http, emu, f"/api/Software/{WIN10}/machineReferences").json()
    assert refs["@odata.context"].endswith("#MachineReferences")
    assert all(set(r) == {"id", "computerDnsName", "osPlatform", "rbacGroupName"} for r in refs["value"])
    machine = api(http, emu, "/api/machines/SRV-SQL01.contoso.local").json()
    assert machine["@odata.context"].endswith("#Machines/$entity")
    assert re.match(r"^[0-9a-f]{40}$", machine["id"]) and machine["computerDnsName"] == "srv-sql01.contoso.local"
    by_id = api(http, emu, "/api/machines/" + machine["id"].upper()).json()
    assert by_id["id"] == machine["id"]
    missing = api(http, emu, f"/api/machines/{machine['id']}/getmissingkbs").json()["value"]
    assert missing and all(k["machineMissedOn"] == 1 for k in missing)


def test_odata_options(emu, http):
    def names(path):
        response = api(http, emu, path)
        assert response.status_code == 200, response.text
        return [item.get("name") or item.get("computerDnsName") for item in response.json()["value"]]

    assert names("/api/Software?$filter=" + urllib.parse.quote("startswith(name,'windows_server')")) == [
        "windows_server_2019", "windows_server_2022"]
    assert names("/api/Software?$filter=vendor eq 'microsoft' and contains(name,'.net')") == [".net_framework"]
    assert names("/api/Software?$filter=id+eq+'notepad_plus_plus-_-notepad%2B%2B'") == ["notepad++"]
    everything = names("/api/Software")
    assert len(everything) == 20
    assert names("/api/Software?$top=4&$skip=2") == everything[2:6]
    assert names("/api/machines?$filter=startswith(computerDnsName,'srv-')&$top=2") == [
        "srv-dc01.contoso.local", "srv-file01.contoso.local"]
    assert names("/api/machines?$filter=osPlatform eq 'WindowsServer2022'") == [
        "srv-sql01.contoso.local", "srv-app01.contoso.local", "srv-web01.contoso.local", "web01.contoso.local",
        "web01.fabrikam.local"]
    assert names("/api/machines?$filter=computerDnsName eq 'WS-0003.CONTOSO.LOCAL'") == ["ws-0003.contoso.local"]
    for bad in ("$top=10001", "$top=-1", "$skip=x", "$filter=name gt 'a'", "$filter=weaknesses eq 'x'",
                "$filter=startswith(name,'a'"):
        assert_api_error(api(http, emu, "/api/Software?" + bad), 400, "ODataError")
    assert "10000" in api(http, emu, "/api/Software?$top=10001").json()["error"]["message"]
    assert names("/api/Software?$top=10000") == everything


# -- dataset --------------------------------------------------------------------------------------------


# Microsoft's example answer of GET /api/Software/microsoft-_-edge/getmissingkbs ("Get missing KBs by software ID").
MICROSOFT_EDGE_SAMPLE = {"id": "4540673", "name": "March 2020 Security Updates", "productsNames": ["edge"],
                         "url": "https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB4540673",
                         "machineMissedOn": 240, "cveAddressed": 14}
MICROSOFT_DEVICE = "2339ad14a01bd0299afb93dfa2550136057bff96"  # the device of "Get missing KBs by device ID"


def test_dataset_is_consistent(emu, http):
    data = emu.data
    assert len(data["software"]) == 20 and len(data["machines"]) == 22
    for sid, software in data["software"].items():
        served = api(http, emu, f"/api/Software/{urllib.parse.quote(sid, safe='')}/getmissingkbs").json()["value"]
        assert served == software["missing_kbs"]
        for kb in served:
            assert 1 <= kb["cveAddressed"] <= 120 and software["name"] in kb["productsNames"]
            owners = [m for m in software["machines"]
                      if kb["id"] in [k["id"] for k in data["machines"][m]["missing_kbs"]]]
            if sid == "microsoft-_-edge":  # the one count fixed to Microsoft's sample, not computed
                assert kb == MICROSOFT_EDGE_SAMPLE and owners == [MICROSOFT_DEVICE]
                continue
            assert kb["machineMissedOn"] == len(owners) > 0
        assert software["exposedMachines"] == (len(software["machines"]) if software["weaknesses"] else 0)
    for mid, machine in data["machines"].items():
        names = {data["software"][s]["name"] for s in machine["software"]}
        union = {kb["id"] for s in machine["software"] for kb in data["software"][s]["missing_kbs"]}
        missing = {kb["id"] for kb in machine["missing_kbs"]}
        assert missing <= union
        assert all(names & set(kb["productsNames"]) for kb in machine["missing_kbs"])
        assert api(http, emu, f"/api/machines/{mid}/getmissingkbs").json()["value"] == machine["missing_kbs"]
    shared = [kb for kb in data["kbs"].values() if len(kb["productsNames"]) > 1 and kb["machines"]]
    assert shared, "at least one missing KB must belong to several software products"
    assert data["software"]["google-_-chrome"]["weaknesses"] > 0
    assert data["software"]["google-_-chrome"]["missing_kbs"] == []
    assert any(not m["missing_kbs"] for m in data["machines"].values())  # a fully patched machine


def test_dataset_is_deterministic_and_extendable():
    assert Dataset(3).to_dict() == Dataset(3).to_dict()
    assert Dataset(3).to_dict() != Dataset(4).to_dict()
    big = Dataset(1, extra_software=1000, extra_machines=30)
    assert len(big.software) == 1020 and len(big.machines) == 52
    extra = [sid for sid in big.software if sid not in Dataset(1).software]
    assert all(1 <= len(big.software_missing[sid]) <= 5 for sid in extra[:200])


@pytest.mark.parametrize("seed", [0, 7, 1234])
def test_microsofts_documented_examples_are_served_as_documented(seed, emu, http):
    """The documented example IDs answer Microsoft's sample, whatever the seed (tests use 7, 1234 and others)."""
    data = Dataset(seed, extra_software=3, extra_machines=2).to_dict()
    assert data["software"]["microsoft-_-edge"]["missing_kbs"] == [MICROSOFT_EDGE_SAMPLE]
    assert data["machines"][MICROSOFT_DEVICE]["missing_kbs"] == [dict(MICROSOFT_EDGE_SAMPLE, machineMissedOn=1)]
    for mid in ("7c7e1896fa39efb0a32a2cf421d837af1b9bf762", MICROSOFT_DEVICE):
        assert mid in data["machines"]
    names = {m["computerDnsName"] for m in data["machines"].values()}
    assert {"web01.contoso.local", "web01.fabrikam.local", "srv-sql01.contoso.local"} <= names
    # the same over HTTP (the emulator fixture runs seed 7)
    assert api(http, emu, "/api/Software/microsoft-_-edge/getmissingkbs").json()["value"] == [MICROSOFT_EDGE_SAMPLE]
    assert api(http, emu, f"/api/machines/{MICROSOFT_DEVICE}/getmissingkbs").json()["value"] == [
        dict(MICROSOFT_EDGE_SAMPLE, machineMissedOn=1)]
    assert api(http, emu, "/api/Software/microsoft-_-edge").json()["name"] == "edge"
    both = api(http, emu, "/api/machines?$filter=startswith(computerDnsName,'web01.')").json()["value"]
    assert sorted(m["computerDnsName"] for m in both) == ["web01.contoso.local", "web01.fabrikam.local"]


def test_documented_entities_leave_the_seeded_data_alone(monkeypatch):
    """They come after every random draw: the seeded entities are those of a dataset built without them."""
    with_docs = Dataset(5, extra_software=4, extra_machines=3)
    documented_machines = {m[0] for m in data_module.DOCUMENTED_MACHINES}
    monkeypatch.setattr(Dataset, "_add_documented", lambda self: None)
    without = Dataset(5, extra_software=4, extra_machines=3)
    assert set(with_docs.machines) == set(without.machines) | documented_machines
    assert set(with_docs.software) == set(without.software) | {"microsoft-_-edge"}
    for mid, machine in without.machines.items():
        assert with_docs.machines[mid] == machine and with_docs.machine_missing[mid] == without.machine_missing[mid]
    for sid, software in without.software.items():
        assert with_docs.software_missing[sid] == without.software_missing[sid]
        assert {k: v for k, v in with_docs.software[sid].items() if k != "exposedMachines"} == \
            {k: v for k, v in software.items() if k != "exposedMachines"}
    for kb, info in without.kbs.items():
        assert with_docs.kbs[kb] == info


# -- paging ---------------------------------------------------------------------------------------------


def _follow(http, emu, path, headers):
    url, pages, items = emu.url + path, 0, []
    while url:
        body = http.get(url, headers=headers).json()
        items.extend(body["value"])
        pages += 1
        url = body.get("@odata.nextLink")
    return items, pages


def test_paging_with_next_link(emu, http):
    headers = bearer(emu)
    full = http.get(emu.url + "/api/Software", headers=headers).json()["value"]
    emu.configure(page_size=4)
    first = http.get(emu.url + "/api/Software?$filter=vendor eq 'microsoft'", headers=headers).json()
    assert len(first["value"]) == 4
    link = urllib.parse.urlsplit(first["@odata.nextLink"])
    assert link.netloc == f"127.0.0.1:{emu.port}" and "$skiptoken=" in link.query and "$filter=" in link.query
    items, pages = _follow(http, emu, "/api/Software", headers)
    assert items == full and pages == -(-len(full) // 4) and pages > 1
    kbs = emu.data["software"][WIN10]["missing_kbs"]
    emu.configure(page_size=1)
    assert _follow(http, emu, f"/api/Software/{WIN10}/getmissingkbs", headers) == (kbs, len(kbs))
    emu.configure(page_size=2, nextlink_base="https://evil.example")
    body = http.get(emu.url + "/api/machines", headers=headers).json()
    assert body["@odata.nextLink"].startswith("https://evil.example/api/machines?$skiptoken=")
    assert_api_error(http.get(emu.url + "/api/machines?$skiptoken=garbage", headers=headers), 400, "ODataError")


# -- faults ---------------------------------------------------------------------------------------------


def test_rate_limit_sliding_window(emu, http, clock):
    emu.configure(rate_limit_per_minute=3)
    headers = bearer(emu)
    other = bearer(emu, "softwareonly")
    url = emu.url + "/api/Software"
    statuses = []
    for dummy in range(3):
        statuses.append(http.get(url, headers=headers).status_code)
        clock.advance(10)
    assert statuses == [200, 200, 200]                 # arrivals at t=0, 10, 20
    limited = http.get(url, headers=headers)            # t=30: fourth in the window
    assert_api_error(limited, 429, "TooManyRequests")
    assert limited.headers["Retry-After"] == "40"       # the t=10 arrival leaves at 70
    assert http.get(url, headers=other).status_code == 200  # windows are per client
    clock.advance(25)                                   # t=55: the rejected call still counts
    again = http.get(url, headers=headers)
    assert again.status_code == 429 and again.headers["Retry-After"] == "25"
    clock.advance(25.5)                                 # t=80.5: only t=30 and t=55 remain
    assert http.get(url, headers=headers).status_code == 200
    stats = emu.stats()
    assert stats["status_counts"] == {"200": 5, "429": 2}
    assert stats["max_in_any_60s"] == 5
    assert stats["max_in_any_60s_by_client"][SECRET_CLIENT_ID] == 5
    assert stats["api_requests"] == 7


def test_random_429_and_5xx(emu, http):
    emu.configure(error_rate_429=1.0, retry_after_s=3)
    response = api(http, emu, "/api/Software")
    assert_api_error(response, 429, "TooManyRequests")
    assert response.headers["Retry-After"] == "3"
    emu.configure(error_rate_429=0.0, error_rate_5xx=1.0, error_statuses_5xx=[503])
    assert_api_error(api(http, emu, "/api/Software"), 503, "ServiceUnavailable")
    emu.configure(error_rate_5xx=0.5, error_statuses_5xx=[500, 502])
    statuses = {api(http, emu, "/api/Software").status_code for dummy in range(30)}
    assert statuses == {200, 500, 502}


def test_fail_next(emu, http):
    emu.configure(fail_next=[{"path_regex": "getmissingkbs", "status": 503, "count": 2, "retry_after": 2},
                             {"path_regex": "/api/machines$", "status": 500, "body": "<html>oops</html>"},
                             {"path_regex": "token", "status": 503, "target": "token"}])
    assert api(http, emu, "/api/Software/" + WIN10).status_code == 200
    for dummy in range(2):
        response = api(http, emu, f"/api/Software/{WIN10}/getmissingkbs")
        assert_api_error(response, 503, "ServiceUnavailable")
        assert response.headers["Retry-After"] == "2"
    assert api(http, emu, f"/api/Software/{WIN10}/getmissingkbs").status_code == 200
    html = api(http, emu, "/api/machines")
    assert html.status_code == 500 and html.text == "<html>oops</html>"
    assert token_post(http, emu, secret_form()).status_code == 503
    assert token_post(http, emu, secret_form()).status_code == 200
    assert emu.faults()["fail_next"] == []
    assert emu.stats()["faults_injected"]["fail_next"] == 4


def test_drop_next(emu, http):
    emu.configure(drop_next=1)
    with pytest.raises(requests.ConnectionError):
        api(http, emu, "/api/Software")
    assert api(http, emu, "/api/Software").status_code == 200
    stats = emu.stats()
    assert stats["dropped"] == 1 and stats["api_requests"] == 2 and stats["status_counts"] == {"200": 1}


def test_malformed(emu, http):
    emu.configure(malformed_next=1)
    response = api(http, emu, "/api/Software")
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    assert api(http, emu, "/api/Software").json()["value"]
    emu.configure(malformed_rate=1.0)
    assert_api_error(api(http, emu, "/api/Software/nope"), 404, "ResourceNotFound")  # only 200s are truncated
    assert emu.stats()["malformed"] == 1


def test_latency_and_max_concurrent(emu):
    emu.configure(latency_ms=300)
    headers = bearer(emu)

    def call(dummy):
        with VerifyingSession(emu.ca_path) as session:
            started = time.monotonic()
            status = session.get(emu.url + "/api/Software", headers=headers).status_code
            return status, time.monotonic() - started

    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        results = list(pool.map(call, range(5)))
    assert all(status == 200 and elapsed >= 0.29 for status, elapsed in results)
    stats = emu.stats()
    assert stats["max_concurrent"] == 5 and stats["in_flight"] == 0


def test_revocation(emu, http):
    old = bearer(emu)
    assert api(http, emu, "/api/Software", headers=old).status_code == 200
    emu.revoke_tokens()
    assert_api_error(api(http, emu, "/api/Software", headers=old), 401, "Unauthorized",
                     "The access token has been revoked.")
    assert api(http, emu, "/api/Software").status_code == 200  # a token issued afterwards
    assert emu.stats()["revocations"] == 1
    emu.reset()
    assert api(http, emu, "/api/Software", headers=old).status_code == 200


def test_ignore_filter(emu, http):
    def listed(path):
        response = api(http, emu, path)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["value"]]

    software, machines = listed("/api/Software"), listed("/api/machines")
    windows = "/api/Software?$filter=" + urllib.parse.quote("vendor eq 'microsoft' and startswith(name,'windows')")
    nothing = "/api/machines?$filter=" + urllib.parse.quote("computerDnsName eq 'no-such-device'")
    assert len(listed(windows)) == 4
    emu.configure(ignore_filter=["software"])
    assert listed(windows) == software  # as if no filter was given
    assert listed(windows + "&$top=3&$skip=2") == software[2:5]  # $top and $skip still apply
    assert listed("/api/Software?$filter=" + urllib.parse.quote("not a filter")) == software  # not even parsed
    assert_api_error(api(http, emu, nothing), 404, "ResourceNotFound")  # the machines' filter still applies
    emu.configure(ignore_filter=["machines"])
    assert listed(nothing) == machines and len(listed(windows)) == 4
    assert emu.stats()["faults_injected"]["ignore_filter"] == 4  # the requests with a $filter it ignored
    assert emu.configure(ignore_filter=["machines", "software", "machines"])["ignore_filter"] == ["machines", "software"]
    for bad in ("software", ["alerts"], [None]):
        with pytest.raises(ValueError, match="ignore_filter must be a list of software, machines"):
            emu.configure(ignore_filter=bad)
    emu.reset()
    assert emu.faults()["ignore_filter"] == [] and len(listed(windows)) == 4


# -- admin endpoints and stats ---------------------------------------------------------------------------


def test_admin_endpoints(emu, http):
    admin = emu.url + "/_emulator"
    config = http.post(admin + "/config", json={"page_size": 5, "latency_ms": 1}).json()
    assert config["page_size"] == 5 and config["latency_ms"] == 1 and emu.faults()["page_size"] == 5
    bad = http.post(admin + "/config", json={"no_such_fault": 1})
    assert bad.status_code == 400 and "no_such_fault" in bad.json()["error"]
    assert http.post(admin + "/config", json={"error_rate_5xx": 2}).status_code == 400
    token = http.post(admin + "/token", json={"client": "softwareonly"}).json()
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert claims["roles"] == ["Software.Read.All"]
    assert http.post(admin + "/token", json={"client": "nobody"}).status_code == 400
    headers = {"Authorization": "Bearer " + token["access_token"]}
    assert http.get(emu.url + "/api/Software", headers=headers).status_code == 200
    assert http.post(admin + "/revoke").status_code == 200
    assert http.get(emu.url + "/api/Software", headers=headers).status_code == 401
    data = http.get(admin + "/data").json()
    assert data["software"][WIN10]["missing_kbs"] == emu.data["software"][WIN10]["missing_kbs"]
    assert http.post(admin + "/federated-token", json={"subject": "x"}).status_code == 200
    stats = http.get(admin + "/stats").json()
    assert stats["api_requests"] == 2 and stats["token_requests"] == 0 and stats["revocations"] == 1
    assert all(not r["raw_path"].startswith("/_emulator") for r in stats["requests"])
    assert http.post(admin + "/reset").status_code == 200
    assert emu.faults()["page_size"] == 0 and emu.stats()["api_requests"] == 0


def test_stats_shape(emu, http):
    api(http, emu, "/api/Software")
    token_post(http, emu, secret_form(client_secret="bad"))
    stats = emu.stats()
    assert set(stats["api_by_route"]) >= {"software_list", "software", "software_missing_kbs",
                                          "software_machine_references", "machine_list", "machine",
                                          "machine_missing_kbs"}
    assert stats["token_status_counts"] == {"401": 1}
    api_entry, token_entry = stats["requests"]
    assert set(api_entry) == {"t", "method", "raw_path", "route", "status", "client_id"}
    assert api_entry["route"] == "software_list" and api_entry["client_id"] == SECRET_CLIENT_ID
    assert token_entry["route"] == "token" and token_entry["status"] == 401


# -- CLI -------------------------------------------------------------------------------------------------


def test_cli(tmp_path):
    state = str(tmp_path / "cli-state")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"page_size": 2, "seed": 5}))
    env = dict(os.environ, PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))
    command = [sys.executable, "-m", "mde_emulator", "--state-dir", state, "--config", str(config),
               "--fail-next", json.dumps([{"path_regex": "getmissingkbs", "status": 503}]),
               "--error-statuses-5xx", "503", "--latency-ms", "1", "--ignore-filter", "software,machines"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True) as process:
        try:
            line = process.stdout.readline()
            info = json.loads(line)
            with open(os.path.join(state, "emulator.json"), encoding="utf-8") as handle:
                assert json.load(handle) == info
            assert info["pid"] == process.pid and info["seed"] == 5
            with VerifyingSession(info["ca_path"]) as session:
                answer = session.post(info["token_endpoint"], data={
                    "grant_type": "client_credentials", "client_id": info["clients"]["secret"]["client_id"],
                    "client_secret": info["clients"]["secret"]["client_secret"], "scope": info["scope"]}).json()
                headers = {"Authorization": "Bearer " + answer["access_token"]}
                page = session.get(info["url"] + "/api/Software", headers=headers).json()
                assert len(page["value"]) == 2 and "@odata.nextLink" in page
                assert session.get(info["url"] + f"/api/Software/{WIN10}/getmissingkbs",
                                   headers=headers).status_code == 503
                config = session.get(info["url"] + "/_emulator/config").json()
                assert config["error_statuses_5xx"] == [503] and config["ignore_filter"] == ["machines", "software"]
        finally:
            process.send_signal(signal.SIGTERM)
            rest, stderr = process.communicate(timeout=10)
        assert process.returncode == 0, stderr
        assert rest == ""  # exactly one line on stdout


def test_revoke_after_api_requests_lands_mid_run(tmp_path):
    with Emulator(str(tmp_path), revoke_after_api_requests=2) as emu:
        token = emu.issue_token("secret")["access_token"]
        url = emu.url + "/api/Software/microsoft-_-windows_11"
        headers = {"Authorization": "Bearer " + token}
        assert requests.get(url, headers=headers, verify=emu.ca_path).status_code == 200
        assert requests.get(url, headers=headers, verify=emu.ca_path).status_code == 401
        fresh = emu.issue_token("secret")["access_token"]
        assert requests.get(url, headers={"Authorization": "Bearer " + fresh}, verify=emu.ca_path).status_code == 200
        assert emu.stats()["faults_injected"]["revocation"] == 1
