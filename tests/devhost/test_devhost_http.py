"""The devhost serves HTTP triggers over a real socket the way the Functions host does."""

from concurrent.futures import ThreadPoolExecutor

import requests

from devhost.services import wait_until
from tests.devhost.conftest import FIXTURE_KEY, FIXTURE_MASTER_KEY


def test_route_params_query_and_absolute_url_reach_the_function(fixture_host):
    resp = fixture_host.get("/api/hello/Anna%20de%20Vries?lang=nl")
    assert resp.status_code == 200
    data = resp.json()
    assert data["name"] == "Anna de Vries"
    assert data["params"] == {"lang": "nl"}
    assert data["method"] == "GET"
    assert data["url"] == f"{fixture_host.url}/api/hello/Anna%20de%20Vries?lang=nl"


def test_local_settings_are_in_the_environment_before_the_app_is_imported(fixture_host):
    assert fixture_host.get("/api/hello/x").json()["settingAtImport"] == "from-local-settings"


def test_forwarded_headers_shape_the_url_the_app_sees(fixture_host):
    resp = fixture_host.get(
        "/api/hello/x",
        headers={
            "x-functions-key": FIXTURE_KEY,
            "X-Forwarded-Host": "docuflow.example",
            "X-Forwarded-Proto": "https",
        },
    )
    assert resp.json()["url"] == "https://docuflow.example/api/hello/x"


def test_missing_or_wrong_key_is_401_with_an_empty_body(fixture_host):
    for key in (None, "wrong-key"):
        resp = fixture_host.get("/api/hello/x", key=key)
        assert resp.status_code == 401
        assert resp.content == b""


def test_key_is_accepted_as_code_query_parameter(fixture_host):
    resp = requests.get(f"{fixture_host.url}/api/hello/x?code={FIXTURE_KEY}", timeout=10)
    assert resp.status_code == 200


def test_anonymous_function_needs_no_key_and_its_headers_come_back(fixture_host):
    resp = fixture_host.get("/api/public", key=None)
    assert resp.status_code == 200
    assert resp.text == "ok"
    assert resp.headers["X-Fixture"] == "yes"


def test_admin_level_needs_the_master_key(fixture_host):
    assert fixture_host.get("/api/admin").status_code == 401
    assert fixture_host.get("/api/admin", key=FIXTURE_MASTER_KEY).status_code == 200


def test_unhandled_exception_is_500_without_details_and_logged_for_the_developer(fixture_host):
    resp = fixture_host.get("/api/boom")
    assert resp.status_code == 500
    assert b"fixture-internal-detail" not in resp.content
    assert resp.content == b""
    assert wait_until(lambda: "fixture-internal-detail-do-not-leak" in fixture_host.logs(), 10)
    assert "Traceback" in fixture_host.logs()


def test_unknown_route_is_404_and_wrong_method_is_405(fixture_host):
    assert fixture_host.get("/api/nope").status_code == 404
    assert fixture_host.get("/not-api/hello/x").status_code == 404
    resp = requests.put(f"{fixture_host.url}/api/hello/x", timeout=10)
    assert resp.status_code == 405
    assert resp.headers["Allow"] == "GET"


def test_route_constraints_and_literal_precedence(fixture_host):
    assert fixture_host.get("/api/items/7").json() == {"id": 7, "method": "GET"}
    assert fixture_host.get("/api/items/seven").status_code == 404
    headers = {"x-functions-key": FIXTURE_KEY}
    resp = requests.post(f"{fixture_host.url}/api/items/new", headers=headers, timeout=10)
    assert resp.status_code == 201
    resp = requests.delete(f"{fixture_host.url}/api/items/7", headers=headers, timeout=10)
    assert resp.json() == {"id": 7, "method": "DELETE"}


def test_binary_body_and_status_round_trip(fixture_host):
    body = bytes(range(256)) * 64
    resp = requests.post(
        f"{fixture_host.url}/api/echo",
        data=body,
        headers={"x-functions-key": FIXTURE_KEY, "Content-Type": "application/pdf"},
        timeout=10,
    )
    assert resp.status_code == 202
    assert resp.content == body
    assert resp.headers["Content-Type"].startswith("application/pdf")


def test_requests_are_served_concurrently(fixture_host):
    # The function only answers 200 when two requests are inside it at once.
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: fixture_host.get("/api/together"), range(2)))
    assert [r.status_code for r in results] == [200, 200]


def test_queue_output_binding_enqueues_for_the_queue_trigger(fixture_host):
    resp = requests.post(
        f"{fixture_host.url}/api/enqueue",
        data='{"tag": "from-http-output"}',
        headers={"x-functions-key": FIXTURE_KEY},
        timeout=10,
    )
    assert resp.status_code == 202
    assert wait_until(
        lambda: any("from-http-output" in r["body"] for r in fixture_host.records()), 20
    )


def test_unusual_methods_are_405_not_a_server_error(fixture_host):
    resp = requests.request("TRACE", f"{fixture_host.url}/api/hello/x", timeout=10)
    assert resp.status_code == 405
