"""The server itself: ready line, SIGTERM, persistence, routing, concurrency, streaming files."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import requests

from devhost.lifeline import die_with_parent
from devhost.services import ROOT, start_sandbox
from sandbox.files import expected_bytes


def test_starts_prints_one_ready_line_and_stops_on_sigterm(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--port", "0", "--state", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=die_with_parent(),  # a killed test run takes the sandbox with it
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("sandbox ready https://127.0.0.1:")
        url, ca = line.split()[2], line.split("ca=")[1].strip()
        assert ca == str(tmp_path / "ca.pem")
        resp = requests.get(f"{url}/_sandbox/info", verify=ca, timeout=10)
        assert resp.json()["baseUrl"] == url

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        proc.stdout.close()


def test_ca_and_secrets_survive_a_restart_with_the_same_state_dir(tmp_path):
    first = start_sandbox(state_dir=tmp_path)
    try:
        url, ca = first.info["url"], first.info["ca"]
        ca_pem = (tmp_path / "ca.pem").read_bytes()
        token = requests.post(
            f"{url}/contoso.test/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "5d1e7c9a-0000-4000-8000-00000000a11c",
                "client_secret": "sandbox-app-secret",
                "scope": "https://vault.azure.net/.default",
            },
            verify=ca,
            timeout=10,
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        put = requests.put(
            f"{url}/secrets/kept?api-version=7.6",
            json={"value": "v"},
            headers=headers,
            verify=ca,
            timeout=10,
        )
        assert put.status_code == 200
    finally:
        first.stop()

    second = start_sandbox(state_dir=tmp_path)
    try:
        url2 = second.info["url"]
        assert (tmp_path / "ca.pem").read_bytes() == ca_pem
        got = requests.get(
            f"{url2}/secrets/kept?api-version=7.6", headers=headers, verify=ca, timeout=10
        )
        assert got.status_code == 200  # the signing key persisted too, so the token still works
        assert got.json()["value"] == "v"
    finally:
        second.stop()


def test_unknown_path_is_404_and_wrong_method_is_405_in_json(sandbox):
    missing = sandbox.http.get(f"{sandbox.url}/no/such/path")
    wrong = sandbox.http.delete(f"{sandbox.url}/_sandbox/reset")

    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NotFound"
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "MethodNotAllowed"


def test_every_response_has_a_request_id_and_echoes_client_request_id(sandbox):
    resp = sandbox.http.get(f"{sandbox.url}/nowhere", headers={"client-request-id": "c-42"})

    assert len(resp.headers["request-id"]) == 36
    assert resp.headers["client-request-id"] == "c-42"


def test_serves_concurrent_requests_on_kept_alive_connections(fresh_sandbox):
    fresh_sandbox.add_fault(path="^/contoso.test/discovery/", action="delay", delayMs=200)
    url = f"{fresh_sandbox.url}/contoso.test/discovery/v2.0/keys"

    def fetch(_: int) -> int:
        with requests.Session() as s:
            return sum(
                s.get(url, verify=fresh_sandbox.ca, timeout=10).status_code for _ in range(2)
            )

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(fetch, range(8)))

    assert statuses == [400] * 8  # 2 x 200 per session
    delayed = [e for e in fresh_sandbox.requests_log() if e["path"].endswith("/keys")]
    assert len(delayed) >= 16


def test_requests_log_supports_since_and_limit(fresh_sandbox):
    start = fresh_sandbox.control("GET", "requests?limit=1").json()["lastSeq"]
    for _ in range(3):
        fresh_sandbox.http.get(f"{fresh_sandbox.url}/nowhere")

    since = fresh_sandbox.control("GET", f"requests?since={start}").json()["value"]
    limited = fresh_sandbox.control("GET", f"requests?since={start}&limit=2").json()["value"]

    assert [e["path"] for e in since] == ["/nowhere"] * 3
    assert {"time", "method", "path", "status", "tenant", "app", "user", "fault", "durationMs"} <= (
        set(since[0])
    )
    assert [e["seq"] for e in limited] == [e["seq"] for e in since[-2:]]


def test_generated_file_streams_deterministic_bytes_with_length(sandbox):
    size = 3 * 1024 * 1024 + 5
    url = f"{sandbox.url}/_sandbox/files/report.pdf?size={size}&seed=7"

    head = sandbox.http.head(url)
    with sandbox.http.get(url, stream=True) as resp:
        digest = hashlib.sha256()
        for chunk in resp.iter_content(1 << 16):
            digest.update(chunk)

    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(size)
    assert resp.headers["Content-Type"] == "application/pdf"
    assert digest.hexdigest() == hashlib.sha256(expected_bytes("report.pdf", size, 7)).hexdigest()
    assert expected_bytes("report.pdf", 100, 7) != expected_bytes("report.pdf", 100, 8)


def test_uploaded_file_is_returned_and_reset_forgets_it(fresh_sandbox):
    data = b"%PDF-1.7 sandbox " * 70000  # about 1.2 MB
    url = f"{fresh_sandbox.url}/_sandbox/files/upload.pdf"

    put = fresh_sandbox.http.put(url, data=data)
    got = fresh_sandbox.http.get(url)
    fresh_sandbox.reset()
    gone = fresh_sandbox.http.get(url)

    assert put.status_code == 201
    assert json.loads(put.content)["size"] == len(data)
    assert got.content == data
    assert gone.status_code == 404
