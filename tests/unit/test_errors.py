"""The error hierarchy maps to DESIGN §3's shape and statuses in one place."""

from shared.errors import (
    Detail,
    GraphInfo,
    GraphUnavailable,
    ReauthRequired,
    SendAsDenied,
    Throttled,
    ValidationFailed,
    from_graph_error,
    to_http,
)


def test_validation_error_has_the_design_shape():
    status, headers, body = to_http(
        ValidationFailed("bad", details=[Detail("to[0]", "not an address")]), "op-1"
    )
    assert status == 400 and headers == {}
    assert body == {
        "error": {
            "code": "validation_failed",
            "message": "bad",
            "details": [{"field": "to[0]", "message": "not an address"}],
            "operationId": "op-1",
        }
    }


def test_graph_send_as_denied_becomes_403_naming_the_powershell_grants():
    error = from_graph_error(403, "ErrorSendAsDenied", "denied", "rid-1")
    assert isinstance(error, SendAsDenied)
    status, _, body = to_http(error)
    assert status == 403 and body["error"]["code"] == "send_as_denied"
    assert "Add-RecipientPermission" in body["error"]["message"]
    assert "SendAs" in body["error"]["message"]
    assert "Add-MailboxPermission" in body["error"]["message"]
    assert "FullAccess" in body["error"]["message"]
    assert body["error"]["graph"] == {
        "status": 403,
        "code": "ErrorSendAsDenied",
        "requestId": "rid-1",
    }


def test_throttled_and_unavailable_carry_retry_after_rounded_up():
    status, headers, body = to_http(Throttled("slow down", retry_after=2.2))
    assert status == 429 and headers["Retry-After"] == "3"
    status, headers, body = to_http(from_graph_error(503, None, None, None, retry_after=7))
    assert status == 503 and headers["Retry-After"] == "7"
    assert body["error"]["code"] == "graph_unavailable"


def test_graph_statuses_map_to_our_codes():
    cases = {
        (404, "ErrorItemNotFound"): "message_not_found",
        (404, "ErrorInvalidUser"): "mailbox_not_found",
        (413, None): "payload_too_large",
        (400, "ErrorMessageSizeExceeded"): "payload_too_large",
        (400, "InvalidInternetMessageHeader"): "validation_failed",
        (403, "ErrorAccessDenied"): "access_denied",
        (500, "InternalServerError"): "graph_error",
        (504, None): "graph_unavailable",
    }
    for (status, code), ours in cases.items():
        assert from_graph_error(status, code, "m", "r").code == ours, (status, code)


def test_reauth_required_carries_sign_in_url():
    _, _, body = to_http(ReauthRequired("sign in", sign_in_url="https://x/login"))
    assert body["error"]["signInUrl"] == "https://x/login"
    assert to_http(ReauthRequired("x"))[0] == 401


def test_unexpected_exception_becomes_a_plain_500_without_its_text():
    status, _headers, body = to_http(RuntimeError("secret=hunter2 at line 3"), "op-9")
    assert status == 500
    assert "hunter2" not in str(body) and body["error"]["code"] == "internal_error"
    assert body["error"]["operationId"] == "op-9"


def test_graph_info_omits_unknown_parts():
    assert GraphInfo(503).as_dict() == {"status": 503}
    assert GraphUnavailable("x").retry_after is None
