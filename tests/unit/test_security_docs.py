"""docs/security.md: the callback verification snippet runs as printed and accepts only what we
sign; the caller example signs what our verifier accepts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from http_message_signatures import InvalidSignature

from shared.signatures import sign, verify

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
KEY = "doc-key-0123456789abcdefghijklmnopqrstuv"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_documented_callback_verifier_accepts_our_signature_and_refuses_a_change():
    namespace: dict = {}
    exec(next(b for b in _blocks() if "def verify_callback" in b), namespace)  # noqa: S102
    url = "https://hooks.example/docuflow/callback?sig=x"
    body = b'{"operationId":"1","status":"succeeded"}'
    headers = {
        "Content-Type": "application/json",
        **sign(KEY, "contoso.test", "POST", url, {}, body),
    }

    assert namespace["verify_callback"](url, headers, body, "contoso.test", KEY)["status"] == (
        "succeeded"
    )
    with pytest.raises(InvalidSignature):
        namespace["verify_callback"](url, headers, body + b" ", "contoso.test", KEY)
    with pytest.raises(InvalidSignature):
        namespace["verify_callback"](url, headers, body, "contoso.test", "another key")


def test_the_documented_caller_signs_what_our_verifier_accepts(monkeypatch):
    import requests

    caller = next(b for b in _blocks() if "HTTPSignatureAuth(" in b and "requests.post" in b)
    sent: list = []

    def capture(url, **kw):
        sent.append(requests.Request("POST", url, **kw).prepare())  # prepare() applies auth

    monkeypatch.setattr(requests, "post", capture)
    exec(caller, {"signing_key": KEY, "function_key": "fk"})  # noqa: S102

    (request,) = sent
    verified = verify("POST", request.url, dict(request.headers), request.body, lambda k: KEY)
    assert verified.key_id == "contoso.test" and verified.nonce
