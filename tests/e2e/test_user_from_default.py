"""`from` on user-mode connections: it defaults to the signed-in `user`, another mailbox is for
Exchange to allow or refuse, and the other modes still require it."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

import pytest

from tests.e2e.connections_kit import (
    add_user_connection,
    browser,  # noqa: F401 - a fixture
    browser_sign_in,
    sent_items_subjects,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

ANNA = "anna@contoso.test"


def mail(connection: str, subject: str, **fields) -> dict:
    return {
        "connection": connection,
        "to": ["extern@example.test"],
        "subject": subject,
        "body": {"contentType": "text", "content": "from defaults"},
        **fields,
    }


@pytest.fixture
def anna_signed_in(fresh_devhost, browser) -> str:  # noqa: F811
    """A user-mode connection on which anna has signed in (in the browser); its name."""
    name = f"from-{uuid.uuid4().hex[:8]}.contoso.test"
    add_user_connection(fresh_devhost, name)
    url = f"{fresh_devhost.url}/api/auth/{name}/login?{urlencode({'user': ANNA})}"
    ok, message = browser_sign_in(browser, url, ANNA)
    assert ok == "true", message
    return name


def test_without_from_a_user_mode_send_goes_out_as_the_signed_in_user(
    anna_signed_in, fresh_devhost, sandbox
):
    resp = fresh_devhost.post(
        "/api/mail/send", json=mail(anna_signed_in, "defaulted from", user=ANNA)
    )

    assert resp.status_code == 200, resp.text
    assert "defaulted from" in sent_items_subjects(sandbox, ANNA)


def test_a_mailbox_the_user_has_no_rights_on_is_refused_by_exchange_not_by_us(
    anna_signed_in, fresh_devhost
):
    resp = fresh_devhost.post(
        "/api/mail/send",
        json=mail(anna_signed_in, "as bram", user=ANNA, **{"from": "bram@contoso.test"}),
    )

    assert resp.status_code == 403, resp.text
    error = resp.json()["error"]
    assert error["code"] in {"send_as_denied", "access_denied"}
    assert error["graph"]["status"] == 403  # Graph decided: `from` was passed through


def test_other_modes_still_require_from_and_say_why(fresh_devhost):
    resp = fresh_devhost.post("/api/mail/send", json=mail("contoso.test", "no from", user=ANNA))

    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "validation_failed"
    assert error["details"] == [
        {"field": "from", "message": "required for connections in app mode"}
    ]
