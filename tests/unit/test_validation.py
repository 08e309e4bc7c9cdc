"""Request decoding and semantic validation: every problem reported with its field."""

import json

import pytest

from shared.api.validation import address_problem, decode
from shared.errors import ValidationFailed
from shared.models import DraftRequest, MoveRequest, Recipient, SendRequest


def body(**overrides):
    base = {
        "connection": "contoso.test",
        "from": "administratie@contoso.test",
        "to": ["anna@contoso.test"],
        "subject": "Hello",
        "body": {"contentType": "text", "content": "Hi"},
    }
    base.update(overrides)
    return json.dumps(base).encode()


def fields_of(exc: pytest.ExceptionInfo[ValidationFailed]) -> set:
    return {d.field for d in exc.value.details}


def test_valid_send_decodes_into_typed_request_with_defaults():
    req = decode(SendRequest, body(to=["a@contoso.test", {"address": "b@x.nl", "name": "B"}]))
    assert req.from_ == "administratie@contoso.test"
    assert req.to[0] == "a@contoso.test"
    assert isinstance(req.to[1], Recipient) and req.to[1].name == "B"
    assert req.save_to_sent_items is True and req.importance == "normal" and req.mode == "sync"


def test_malformed_json_is_a_validation_error_for_the_whole_body():
    with pytest.raises(ValidationFailed) as exc:
        decode(SendRequest, b'{"connection": ')
    assert exc.value.status == 400
    assert exc.value.details[0].field is None
    assert exc.value.message == "The request body is not valid JSON."


def test_empty_body_is_refused():
    with pytest.raises(ValidationFailed):
        decode(SendRequest, b"")


def test_wrong_type_names_the_field_path():
    with pytest.raises(ValidationFailed) as exc:
        decode(SendRequest, body(to=[42]))
    assert fields_of(exc) == {"to[0]"}


def test_missing_required_field_is_named():
    raw = json.loads(body())
    del raw["connection"]
    with pytest.raises(ValidationFailed) as exc:
        decode(SendRequest, json.dumps(raw).encode())
    assert "connection" in exc.value.details[0].message


def test_from_is_required_unless_a_user_is_given():
    raw = json.loads(body())
    del raw["from"]
    with pytest.raises(ValidationFailed) as exc:
        decode(SendRequest, json.dumps(raw).encode())
    assert fields_of(exc) == {"from"}
    assert "user-mode" in exc.value.details[0].message


def test_without_from_the_user_must_be_an_address():
    raw = json.loads(body(user="not an address"))
    del raw["from"]
    with pytest.raises(ValidationFailed) as exc:
        decode(DraftRequest, json.dumps(raw).encode())
    assert fields_of(exc) == {"user"}


def test_without_from_a_user_decodes_and_from_stays_open_for_the_connection_to_decide():
    raw = json.loads(body(user="anna@contoso.test"))
    del raw["from"]
    req = decode(SendRequest, json.dumps(raw).encode())
    assert req.from_ is None and req.user == "anna@contoso.test"


def test_unknown_field_is_refused_as_a_probable_typo():
    with pytest.raises(ValidationFailed) as exc:
        decode(SendRequest, body(tos=["a@b.nl"]))
    assert "tos" in exc.value.details[0].message


def test_all_semantic_problems_are_reported_at_once():
    with pytest.raises(ValidationFailed) as exc:
        decode(
            SendRequest,
            body(
                to=["not-an-address", {"address": "x@contoso.test\r\nBcc: evil@x.nl"}],
                importance="urgent",
                body={"contentType": "rtf", "content": "x"},
                headers={f"x-h{i}": "v" for i in range(6)},
                attachments=[
                    {"name": "a.pdf", "contentBytes": "!!notbase64!!"},
                    {"name": "b.pdf", "url": "http://files.example/b.pdf"},
                ],
            ),
        )
    assert fields_of(exc) >= {
        "to[0]",
        "to[1].address",
        "importance",
        "body.contentType",
        "headers",
        "attachments[0].contentBytes",
        "attachments[1].url",
    }


def test_crlf_in_address_is_named_as_such():
    assert address_problem("a@b.nl\r\nBcc: c@d.nl") == "must not contain CR or LF"
    assert address_problem("a@contoso.test") is None
    assert address_problem("no-at-sign") is not None


def test_header_names_must_start_with_x():
    with pytest.raises(ValidationFailed) as exc:
        decode(SendRequest, body(headers={"Subject": "x"}))
    assert fields_of(exc) == {"headers.Subject"}


def test_more_than_500_recipients_is_refused():
    to = [f"u{i}@contoso.test" for i in range(300)]
    cc = [f"c{i}@contoso.test" for i in range(201)]
    with pytest.raises(ValidationFailed) as exc:
        decode(SendRequest, body(to=to, cc=cc))
    assert fields_of(exc) == {"to"}
    assert "501" in exc.value.details[0].message


def test_exactly_500_recipients_is_fine():
    decode(SendRequest, body(to=[f"u{i}@contoso.test" for i in range(500)]))


def test_send_needs_a_recipient_but_a_draft_does_not():
    with pytest.raises(ValidationFailed):
        decode(SendRequest, body(to=[]))
    assert decode(DraftRequest, body(to=[])).to == []


def test_attachment_needs_exactly_one_source_and_inline_needs_content_id():
    with pytest.raises(ValidationFailed) as exc:
        decode(
            SendRequest,
            body(
                attachments=[
                    {"name": "a", "contentBytes": "aGk=", "url": "https://h/x"},
                    {"name": "b", "contentBytes": "aGk=", "isInline": True},
                ]
            ),
        )
    assert fields_of(exc) == {"attachments[0]", "attachments[1].contentId"}


def test_async_and_auto_modes_are_accepted_and_unknown_modes_are_not():
    assert decode(SendRequest, body(mode="async")).mode == "async"
    assert decode(SendRequest, body(mode="auto")).mode == "auto"
    with pytest.raises(ValidationFailed) as exc:
        decode(SendRequest, body(mode="later"))
    assert fields_of(exc) == {"mode"}


def test_a_callback_url_needs_a_queued_mode():
    with pytest.raises(ValidationFailed) as exc:
        decode(SendRequest, body(callbackUrl="https://docuflow.test/cb"))
    assert fields_of(exc) == {"callbackUrl"}


def test_move_needs_exactly_one_message_reference_and_a_sane_destination():
    raw = {
        "connection": "c",
        "mailbox": "anna@contoso.test",
        "destination": "Inbox//x",
        "messageId": "m",
        "internetMessageId": "<i@x>",
    }
    with pytest.raises(ValidationFailed) as exc:
        decode(MoveRequest, json.dumps(raw).encode())
    assert fields_of(exc) == {"messageId", "destination"}


def test_valid_move_decodes():
    raw = {
        "connection": "c",
        "mailbox": "anna@contoso.test",
        "destination": "archive",
        "internetMessageId": "<i@x>",
        "createMissingFolders": True,
    }
    req = decode(MoveRequest, json.dumps(raw).encode())
    assert req.internet_message_id == "<i@x>" and req.create_missing_folders is True


# --- finding 9: caps, and no control or line-separator character in headers or file names ---


@pytest.mark.parametrize("bad", ["\x00", "\x0b", "\u0085", "\u2028", "\u2029", "\r", "\n", "\x7f"])
def test_control_and_line_separator_characters_are_refused_in_every_header_and_file_name(bad):
    request = body(
        subject=f"s{bad}x",
        headers={"x-case": f"v{bad}x"},
        to=[{"address": "a@contoso.test", "name": f"A{bad}B"}],
        attachments=[
            {
                "name": f"f{bad}.txt",
                "contentBytes": "aGk=",
                "contentType": f"text/plain{bad}X-Evil: 1",
                "contentId": f"id{bad}x",
                "isInline": True,
            }
        ],
    )
    with pytest.raises(ValidationFailed) as exc:
        decode(SendRequest, request)
    assert fields_of(exc) == {
        "subject",
        "headers.x-case",
        "to[0].name",
        "attachments[0].name",
        "attachments[0].contentType",
        "attachments[0].contentId",
    }


def test_a_tab_in_a_subject_is_fine():
    decode(SendRequest, body(subject="a\tb"))


def test_reply_to_counts_towards_500_addresses_and_attachments_stop_at_250():
    many = [f"r{i}@contoso.test" for i in range(20_000)]
    with pytest.raises(ValidationFailed) as exc:
        decode(SendRequest, body(replyTo=many))
    assert fields_of(exc) == {"replyTo"}
    files = [{"name": f"{i}.txt", "contentBytes": "aGk="} for i in range(3_000)]
    with pytest.raises(ValidationFailed) as exc:
        decode(SendRequest, body(attachments=files))
    assert fields_of(exc) == {"attachments"}
    decode(SendRequest, body(attachments=files[:250], replyTo=many[:499]))


@pytest.mark.parametrize(
    ("content", "why"),
    [("aGk", "multiple of 4"), ("a?k=", "only A-Z"), ("=aGk", "only A-Z"), (123, "string")],
)
def test_base64_is_checked_by_length_and_alphabet(content, why):
    with pytest.raises(ValidationFailed) as exc:
        decode(SendRequest, body(attachments=[{"name": "a", "contentBytes": content}]))
    assert why in exc.value.details[0].message


def test_a_hundred_problems_at_most_are_listed():
    bad = [f"not-an-address-{i}" for i in range(400)]
    with pytest.raises(ValidationFailed) as exc:
        decode(SendRequest, body(to=bad))
    assert len(exc.value.details) == 101 and "more problems" in exc.value.details[-1].message
