"""Unit tests of Exchange's permission rules, throttles and message limits (pure logic)."""

from __future__ import annotations

import pytest

from sandbox.context import GRAPH_RESOURCE, Principal
from sandbox.graph import model
from sandbox.graph.errors import GraphError
from sandbox.graph.permissions import check_mailbox_access, check_send_through, resolve_sender
from sandbox.graph.throttle import Throttle

TENANT = "8f3c1a52-0000-4000-8000-00000000c0de"
APP = Principal(
    TENANT, "app", "app", GRAPH_RESOURCE, roles=frozenset({"Mail.Send", "Mail.ReadWrite"})
)
SVC = Principal(
    TENANT,
    "app",
    "user",
    GRAPH_RESOURCE,
    user="svc-docuflow@contoso.test",
    scopes=frozenset({"Mail.Send", "Mail.Send.Shared", "Mail.ReadWrite", "Mail.ReadWrite.Shared"}),
)
PLAIN = Principal(
    TENANT,
    "app",
    "user",
    GRAPH_RESOURCE,
    user="anna@contoso.test",
    scopes=frozenset({"Mail.Send", "Mail.ReadWrite"}),
)
FULL = frozenset({"FullAccess", "SendAs"})


def code_of(fn, *args, **kw) -> str | None:
    try:
        fn(*args, **kw)
    except GraphError as err:
        return err.code
    return None


def test_app_needs_its_roles():
    reader = Principal(TENANT, "app", "app", GRAPH_RESOURCE, roles=frozenset({"Mail.Read"}))
    assert code_of(check_mailbox_access, APP, "x@contoso.test", frozenset(), write=True) is None
    assert code_of(check_mailbox_access, reader, "x@contoso.test", frozenset(), write=False) is None
    assert code_of(check_mailbox_access, reader, "x@contoso.test", frozenset(), write=True) == (
        "ErrorAccessDenied"
    )
    assert code_of(
        resolve_sender, reader, "x@contoso.test", frozenset(), acting="x@contoso.test"
    ) == ("ErrorAccessDenied")


def test_delegated_other_mailbox_needs_shared_scope_and_full_access():
    own = "svc-docuflow@contoso.test"
    assert code_of(check_mailbox_access, SVC, own, frozenset(), write=True) is None
    assert code_of(check_mailbox_access, SVC, "adm@contoso.test", FULL, write=True) is None
    assert code_of(check_mailbox_access, SVC, "bram@contoso.test", frozenset(), write=False) == (
        "ErrorAccessDenied"
    )
    # Rights without the .Shared scope are not enough either.
    assert code_of(check_mailbox_access, PLAIN, "adm@contoso.test", FULL, write=False) == (
        "ErrorAccessDenied"
    )


def test_send_as_and_send_on_behalf_decide_the_sender():
    svc = "svc-docuflow@contoso.test"
    assert resolve_sender(SVC, "adm@contoso.test", frozenset({"SendAs"}), acting=svc) == (
        "adm@contoso.test"
    )
    assert resolve_sender(SVC, "adm@contoso.test", frozenset({"SendOnBehalf"}), acting=svc) == (svc)
    both = frozenset({"SendAs", "SendOnBehalf"})
    assert resolve_sender(SVC, "adm@contoso.test", both, acting=svc) == "adm@contoso.test"
    assert code_of(resolve_sender, SVC, "bram@contoso.test", frozenset(), acting=svc) == (
        "ErrorSendAsDenied"
    )
    anna = "anna@contoso.test"
    assert code_of(resolve_sender, PLAIN, "adm@contoso.test", FULL, acting=anna) == (
        "ErrorSendAsDenied"
    )


def test_an_app_sends_as_the_url_mailbox_and_needs_send_as_for_any_other_from():
    """outlook-send-mail-from-other-user.md: an app with Mail.Send sends as a user "by sending
    the mail normally through the user's mailbox"; another address in `from` needs Send As (or
    Send on Behalf) of that mailbox like any sender, else ErrorSendAsDenied."""
    svc, bram = "svc-docuflow@contoso.test", "bram@contoso.test"
    assert resolve_sender(APP, bram, frozenset(), acting=bram) == bram
    assert code_of(resolve_sender, APP, bram, frozenset(), acting=svc) == "ErrorSendAsDenied"
    assert resolve_sender(APP, "adm@contoso.test", frozenset({"SendAs"}), acting=svc) == (
        "adm@contoso.test"
    )
    assert resolve_sender(APP, "adm@contoso.test", frozenset({"SendOnBehalf"}), acting=svc) == (svc)


def test_sending_through_another_mailbox_needs_full_access_on_it():
    """outlook-send-mail-from-other-user.md, "Sent Items behavior": sending through
    /users/{from} "must have the Full Access mailbox permission in addition to either the Send
    on Behalf or Send As permission"; without it Exchange cannot open the mailbox (403
    ErrorAccessDenied, microsoft-graph-docs issue 9429)."""
    send_as_only = frozenset({"SendAs"})
    assert code_of(check_send_through, SVC, "adm@contoso.test", send_as_only) == (
        "ErrorAccessDenied"
    )
    assert code_of(check_send_through, SVC, "adm@contoso.test", FULL) is None
    assert code_of(check_send_through, SVC, "svc-docuflow@contoso.test", frozenset()) is None
    assert code_of(check_send_through, APP, "bram@contoso.test", frozenset()) is None
    # Full Access without the .Shared send scope is not enough either.
    assert code_of(check_send_through, PLAIN, "adm@contoso.test", FULL) == "ErrorAccessDenied"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_concurrency_limit_frees_slots_when_requests_end():
    throttle = Throttle(lambda: {"concurrentRequestsPerMailbox": 2}, FakeClock())
    with throttle.slot(("k",)), throttle.slot(("k",)):
        with pytest.raises(GraphError) as info, throttle.slot(("k",)):
            pass
        assert info.value.status == 429 and info.value.code == "ApplicationThrottled"
        assert int(info.value.headers["Retry-After"]) >= 1
        with throttle.slot(("other mailbox",)):
            pass
    with throttle.slot(("k",)):
        pass


def test_budget_per_ten_minutes_recovers_after_the_window():
    clock = FakeClock()
    throttle = Throttle(lambda: {"requestsPer10Minutes": 3}, clock)
    for _ in range(3):
        with throttle.slot(("k",)):
            pass
    with pytest.raises(GraphError) as info, throttle.slot(("k",)):
        pass
    assert info.value.headers["Retry-After"] == "600"
    clock.now += 601
    with throttle.slot(("k",)):
        pass


def test_send_rate_is_off_when_none_and_limits_per_minute_when_on():
    clock = FakeClock()
    limits = {"sendRatePerMinute": None}
    throttle = Throttle(lambda: limits, clock)
    for _ in range(100):
        throttle.count_send("adm@contoso.test")
    limits["sendRatePerMinute"] = 30
    throttle.reset()
    for _ in range(30):
        throttle.count_send("adm@contoso.test")
    with pytest.raises(GraphError):
        throttle.count_send("ADM@contoso.test")
    throttle.count_send("anna@contoso.test")
    clock.now += 61
    throttle.count_send("adm@contoso.test")


def rcpt(address: str) -> dict:
    return {"emailAddress": {"address": address}}


def test_header_rules_match_graph():
    ok = [{"name": f"x-h{i}", "value": "v"} for i in range(5)]
    assert len(model.check_headers(ok, 5)) == 5
    six = [*ok, {"name": "x-h6", "value": "v"}]
    assert code_of(model.check_headers, six, 5) == "InvalidInternetMessageHeaderCollection"
    bad = [{"name": "Subject-Override", "value": "v"}]
    assert code_of(model.check_headers, bad, 5) == "InvalidInternetMessageHeader"


def test_recipient_limits_and_unknown_properties():
    many = {"toRecipients": [rcpt(f"u{i}@example.com") for i in range(501)]}
    assert code_of(model.check_sendable, many, {"maxRecipients": 500}) == "ErrorTooManyRecipients"
    assert code_of(model.check_sendable, {}, {}) == "ErrorInvalidRecipients"
    assert code_of(model.clean_input, {"subjekt": "typo"}, {}) == "RequestBodyRead"
    sent = {"isDraft": False}
    assert code_of(model.clean_input, {"subject": "x"}, {}, existing=sent) == (
        "ErrorInvalidPropertyUpdateSentMessage"
    )
    assert model.clean_input({"isRead": True}, {}, existing=sent) == {"isRead": True}


def test_attachment_over_the_post_limit_is_413():
    import base64

    big = {"name": "a.bin", "contentBytes": base64.b64encode(b"x" * 101).decode()}
    with pytest.raises(GraphError) as info:
        model.file_attachment(big, {"maxAttachmentPostBytes": 100})
    assert info.value.status == 413
    assert model.file_attachment({**big, "contentBytes": "eA=="}, {})["content"] == b"x"
