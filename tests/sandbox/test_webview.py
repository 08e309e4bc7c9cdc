"""The web view in headless Chromium: browse to a sent message, download its attachment and the
whole mail as .eml, and prove that a hostile mail body never runs."""

from __future__ import annotations

import base64
import email
import email.policy
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from tests.browser import chromium
from tests.conftest import q
from tests.sandbox.graph_client import (
    ADMIN,
    ANNA,
    Graph,
    app_token,
    eventually,
    rcpt,
    sent_items,
)

pytestmark = pytest.mark.browser
CARLA = "carla@contoso.test"
HOSTILE = (
    "<p id=visible>Hello from the body</p>"
    "<script>window.top.document.title='pwned-script';"
    "document.body.setAttribute('data-pwned','script')</script>"
    "<img src=x onerror=\"window.top.document.title='pwned-img';"
    "document.body.setAttribute('data-pwned','img')\">"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Browser, fresh_sandbox) -> Iterator[Page]:
    context = browser.new_context(ignore_https_errors=True, accept_downloads=True)
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def send(sandbox, subject: str, html: str, attachment: bytes | None = None) -> None:
    """Send as administratie and wait until the mail went out (its Sent Items copy is there)."""
    g = Graph(sandbox.url, sandbox.ca, app_token(sandbox.url))
    message: dict = {
        "subject": subject,
        "body": {"contentType": "html", "content": html},
        "toRecipients": [rcpt(ANNA), rcpt("extern@example.com")],
    }
    if attachment is not None:
        message["attachments"] = [
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": "factuur.pdf",
                "contentType": "application/pdf",
                "contentBytes": base64.b64encode(attachment).decode(),
            }
        ]
    assert g.post(f"users/{ADMIN}/sendMail", json={"message": message}).status_code == 202
    assert eventually(lambda: sent_items(g, ADMIN), sandbox.transit_seconds())


def test_a_sent_message_is_reachable_by_clicking_and_its_attachment_downloads(
    page: Page, fresh_sandbox
):
    pdf = b"%PDF-1.4 sandbox " + bytes(range(256)) * 40
    send(fresh_sandbox, "Factuur maart", "<p>Zie bijlage</p>", pdf)
    page.goto(fresh_sandbox.url + "/")
    page.get_by_role("link", name=ADMIN).click()
    page.get_by_role("link", name="Sent Items").click()
    page.get_by_role("link", name="Factuur maart").click()
    assert page.locator("h1").inner_text() == "Factuur maart"
    with page.expect_download() as info:
        page.get_by_role("link", name="factuur.pdf").click()
    download = info.value
    assert download.suggested_filename == "factuur.pdf"
    with open(download.path(), "rb") as fh:
        assert fh.read() == pdf
    # The whole mail as .eml: the MIME Graph's $value answers, readable by a mail parser.
    with page.expect_download() as info:
        page.get_by_role("link", name="Download .eml").click()
    eml = info.value
    assert eml.suggested_filename == "Factuur maart.eml"
    with open(eml.path(), "rb") as fh:
        parsed = email.message_from_binary_file(fh, policy=email.policy.default)
    assert parsed["Subject"] == "Factuur maart"
    assert {p.get_filename(): p.get_content() for p in parsed.iter_attachments()} == {
        "factuur.pdf": pdf
    }
    page.get_by_role("link", name="Outbound").click()
    assert page.get_by_role("cell", name="extern@example.com").count() == 1


def test_script_and_onerror_in_a_mail_body_do_not_execute(page: Page, fresh_sandbox):
    send(fresh_sandbox, "Hostile", HOSTILE)
    page.goto(fresh_sandbox.url + f"/ui/mailboxes/contoso.test/{ANNA}")
    page.get_by_role("link", name="Hostile").click()
    frame = page.frame_locator("iframe")
    # The body rendered (the test can see it) ...
    assert frame.locator("#visible").inner_text() == "Hello from the body"
    page.wait_for_load_state("load")
    # ... but neither its <script> nor its onerror= ran.
    assert "pwned" not in page.title()
    assert frame.locator("body").get_attribute("data-pwned") is None
    assert page.evaluate("document.title") == page.title()


def test_faults_can_be_injected_and_cleared_from_the_page(page: Page, fresh_sandbox):
    page.goto(fresh_sandbox.url + "/ui/faults")
    page.fill("input[name=path]", r"^/v1\.0/users/nobody")
    page.fill("input[name=times]", "1")
    page.get_by_role("button", name="Add").click()
    assert fresh_sandbox.control("GET", "faults").json()
    assert page.get_by_role("cell", name=r"^/v1\.0/users/nobody").count() == 1
    g = Graph(fresh_sandbox.url, fresh_sandbox.ca, app_token(fresh_sandbox.url))
    assert g.get("users/nobody@contoso.test/messages").status_code == 503
    page.goto(fresh_sandbox.url + "/ui/requests")
    assert page.locator("tr.fault").count() >= 1
    page.goto(fresh_sandbox.url + "/ui/faults")
    page.get_by_role("button", name="Clear all faults").click()
    assert page.get_by_text("No faults").count() == 1


def test_a_thread_and_a_mail_sent_on_behalf_show_as_outlook_shows_them(page: Page, fresh_sandbox):
    g = Graph(fresh_sandbox.url, fresh_sandbox.ca, app_token(fresh_sandbox.url))
    # An app acts as anna's mailbox, and anna has Send on Behalf on administratie.
    namens = {"subject": "Namens", "toRecipients": [rcpt(CARLA)], "from": rcpt(ADMIN),
              "sender": rcpt(ANNA)}  # fmt: skip
    assert g.post(f"users/{ANNA}/sendMail", json={"message": namens}).status_code == 202
    send(fresh_sandbox, "Vraag", "<p>Graag antwoord</p>")  # administratie → anna
    got = eventually(
        lambda: g.ok("GET", f"users/{ANNA}/mailFolders/inbox/messages")["value"],
        fresh_sandbox.transit_seconds(),
    )
    answer = g.post(f"users/{ANNA}/messages/{q(got[0]['id'])}/reply", json={"comment": "Ja"})
    assert answer.status_code == 202, answer.text
    assert eventually(
        lambda: g.ok("GET", f"users/{ADMIN}/mailFolders/inbox/messages")["value"],
        fresh_sandbox.transit_seconds(),
    )
    page.goto(fresh_sandbox.url + f"/ui/mailboxes/contoso.test/{CARLA}")
    row = page.get_by_role("row").filter(has_text="Namens").first
    assert "Anna de Vries" in row.inner_text() and "on behalf of" in row.inner_text()
    page.goto(fresh_sandbox.url + f"/ui/mailboxes/contoso.test/{ADMIN}")
    page.get_by_role("link", name="conversations").click()
    card = page.locator(".card").filter(has_text="RE: Vraag")
    assert "2 messages" in card.inner_text()
    card.get_by_role("link", name="RE: Vraag").click()
    thread = page.locator("h2", has_text="Conversation").locator("xpath=following-sibling::div[1]")
    assert thread.get_by_role("link").count() == 2
    assert thread.get_by_role("link", name="Vraag", exact=True).count() == 1
