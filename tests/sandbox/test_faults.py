"""Fault injection: each action on the token endpoint and Key Vault, and the matcher's rules."""

from __future__ import annotations

import random

import msal
import pytest
import requests

from sandbox.faults import Faults, FaultSpecError
from tests.conftest import SEED_CLIENT_ID, SEED_CLIENT_SECRET, SEED_TENANT

TOKEN_PATH = r"/oauth2/v2\.0/token$"
FORM = {
    "grant_type": "client_credentials",
    "client_id": SEED_CLIENT_ID,
    "client_secret": SEED_CLIENT_SECRET,
    "scope": "https://graph.microsoft.com/.default",
}


def token_url(sandbox) -> str:
    return f"{sandbox.url}/{SEED_TENANT}/oauth2/v2.0/token"


def post_token(sandbox) -> requests.Response:
    # A fresh connection per call, so a dropped link never leaks into the next request.
    with requests.Session() as s:
        return s.post(token_url(sandbox), data=FORM, verify=sandbox.ca, timeout=10)


def vault_headers(sandbox) -> dict[str, str]:
    app = msal.ConfidentialClientApplication(
        SEED_CLIENT_ID,
        client_credential=SEED_CLIENT_SECRET,
        authority=f"{sandbox.url}/{SEED_TENANT}",
        instance_discovery=False,
    )
    token = app.acquire_token_for_client(["https://vault.azure.net/.default"])["access_token"]
    return {"Authorization": f"Bearer {token}"}


def vault(sandbox, method: str, name: str, headers: dict, **kw) -> requests.Response:
    with requests.Session() as s:
        return s.request(
            method,
            f"{sandbox.url}/secrets/{name}?api-version=7.6",
            headers=headers,
            verify=sandbox.ca,
            timeout=10,
            **kw,
        )


def last_entry(sandbox, path_end: str) -> dict:
    return [e for e in sandbox.requests_log() if e["path"].endswith(path_end)][-1]


# --- status -------------------------------------------------------------------------------
def test_status_fault_on_token_endpoint_answers_503_with_retry_after_then_recovers(fresh_sandbox):
    fresh_sandbox.add_fault(path=TOKEN_PATH, action="status", status=503, retryAfter=2, times=1)

    failed = post_token(fresh_sandbox)
    recovered = post_token(fresh_sandbox)

    assert failed.status_code == 503
    assert failed.headers["Retry-After"] == "2"
    assert failed.json()["error"] == "temporarily_unavailable"
    assert recovered.status_code == 200
    assert "access_token" in recovered.json()


def test_status_fault_on_key_vault_answers_429(fresh_sandbox):
    headers = vault_headers(fresh_sandbox)
    fresh_sandbox.add_fault(
        method="GET", path="^/secrets/", action="status", status=429, retryAfter=1, times=1
    )

    resp = vault(fresh_sandbox, "GET", "anything", headers)

    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "1"
    assert resp.json()["error"]["code"] == "TooManyRequests"
    assert last_entry(fresh_sandbox, "/secrets/anything")["fault"] == "status"


# --- reset --------------------------------------------------------------------------------
def test_reset_fault_on_token_endpoint_breaks_the_connection(fresh_sandbox):
    fresh_sandbox.add_fault(path=TOKEN_PATH, action="reset", times=1)

    with pytest.raises(requests.ConnectionError):
        post_token(fresh_sandbox)
    assert post_token(fresh_sandbox).status_code == 200


def test_reset_fault_on_key_vault_breaks_the_connection_and_changes_nothing(fresh_sandbox):
    headers = vault_headers(fresh_sandbox)
    fresh_sandbox.add_fault(method="PUT", path="^/secrets/", action="reset", times=1)

    with pytest.raises(requests.ConnectionError):
        vault(fresh_sandbox, "PUT", "never-stored", headers, json={"value": "x"})

    assert vault(fresh_sandbox, "GET", "never-stored", headers).status_code == 404


# --- delay --------------------------------------------------------------------------------
def test_delay_fault_on_token_endpoint_holds_the_response(fresh_sandbox):
    fresh_sandbox.add_fault(path=TOKEN_PATH, action="delay", delayMs=300, times=1)

    resp = post_token(fresh_sandbox)

    # A delay changes when, never what: the token is issued, the log names the fault, and the
    # one-shot fault is used up.
    assert resp.status_code == 200 and resp.json()["access_token"]
    entry = last_entry(fresh_sandbox, "/oauth2/v2.0/token")
    assert (entry["fault"], entry["status"]) == ("delay", 200)
    (fault,) = fresh_sandbox.control("GET", "faults").json()["value"]
    assert (fault["applied"], fault["remaining"]) == (1, 0)


def test_delay_fault_on_key_vault_holds_the_response(fresh_sandbox):
    headers = vault_headers(fresh_sandbox)
    fresh_sandbox.add_fault(method="PUT", path="^/secrets/", action="delay", delayMs=300)

    resp = vault(fresh_sandbox, "PUT", "slow", headers, json={"value": "x"})

    assert resp.status_code == 200
    entry = last_entry(fresh_sandbox, "/secrets/slow")
    assert (entry["fault"], entry["method"], entry["status"]) == ("delay", "PUT", 200)
    # The delayed write still took effect.
    assert vault(fresh_sandbox, "GET", "slow", headers).json()["value"] == "x"


# --- accept_then_drop ---------------------------------------------------------------------
def test_accept_then_drop_on_token_endpoint_issues_the_token_but_never_answers(fresh_sandbox):
    fresh_sandbox.add_fault(path=TOKEN_PATH, action="accept_then_drop", times=1)

    with pytest.raises(requests.ConnectionError):
        post_token(fresh_sandbox)

    entry = last_entry(fresh_sandbox, "/oauth2/v2.0/token")
    assert entry["fault"] == "accept_then_drop"
    assert entry["status"] == 200


def test_accept_then_drop_on_key_vault_stores_the_secret(fresh_sandbox):
    headers = vault_headers(fresh_sandbox)
    fresh_sandbox.add_fault(method="PUT", path="^/secrets/", action="accept_then_drop", times=1)

    with pytest.raises(requests.ConnectionError):
        vault(fresh_sandbox, "PUT", "took-effect", headers, json={"value": "stored"})

    got = vault(fresh_sandbox, "GET", "took-effect", headers)
    assert got.status_code == 200
    assert got.json()["value"] == "stored"


def test_drop_mid_body_sends_the_head_and_part_of_the_body_then_closes(fresh_sandbox):
    headers = vault_headers(fresh_sandbox)
    assert vault(fresh_sandbox, "PUT", "cut", headers, json={"value": "v" * 500}).ok
    fresh_sandbox.add_fault(
        method="GET", path="^/secrets/cut$", action="drop_mid_body", afterBytes=20, times=1
    )

    with requests.Session() as s:
        resp = s.get(
            f"{fresh_sandbox.url}/secrets/cut?api-version=7.6",
            headers=headers,
            verify=fresh_sandbox.ca,
            timeout=10,
            stream=True,
        )
        assert resp.status_code == 200
        declared = int(resp.headers["Content-Length"])
        received = b""
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            for piece in resp.iter_content(8):
                received += piece

    assert 0 < len(received) <= 20 < declared  # (a last partial read dies with the error)
    assert last_entry(fresh_sandbox, "/secrets/cut")["fault"] == "drop_mid_body"
    assert vault(fresh_sandbox, "GET", "cut", headers).json()["value"] == "v" * 500  # once


# --- control API --------------------------------------------------------------------------
def test_faults_never_hit_the_control_api(fresh_sandbox):
    fresh_sandbox.add_fault(path=".*", action="status", status=500)

    assert fresh_sandbox.control("GET", "faults").json()["value"][0]["action"] == "status"
    fresh_sandbox.clear_faults()
    assert post_token(fresh_sandbox).status_code == 200


def test_a_bad_fault_spec_is_refused(fresh_sandbox):
    for spec in ({"action": "explode"}, {"action": "drop_mid_body", "afterBytes": -1}):
        resp = fresh_sandbox.http.post(f"{fresh_sandbox.url}/_sandbox/faults", json=spec)
        assert resp.status_code == 400, spec


# --- the matcher (pure logic) -------------------------------------------------------------
def test_times_counts_down_and_then_the_fault_stops():
    faults = Faults()
    faults.add({"path": "^/a", "action": "status", "times": 2})

    hits = [faults.take("GET", "/a") for _ in range(3)]

    assert [h is not None for h in hits] == [True, True, False]


def test_method_and_path_must_both_match():
    faults = Faults()
    faults.add({"method": "post", "path": "/token$", "action": "reset"})

    assert faults.take("GET", "/t/oauth2/v2.0/token") is None
    assert faults.take("POST", "/t/oauth2/v2.0/keys") is None
    assert faults.take("POST", "/t/oauth2/v2.0/token")["action"] == "reset"


def test_probability_zero_never_applies_and_one_always_does():
    faults = Faults(rng=random.Random(7))
    faults.add({"path": "^/never", "probability": 0.0})
    faults.add({"path": "^/always", "probability": 1.0})

    assert all(faults.take("GET", "/never") is None for _ in range(50))
    assert all(faults.take("GET", "/always") is not None for _ in range(50))


def test_invalid_regex_is_a_spec_error():
    with pytest.raises(FaultSpecError):
        Faults().add({"path": "("})
