"""The small result page of a per-user sign-in, in Dutch or English (Accept-Language)."""

from __future__ import annotations

import html

TEXTS = {
    "en": {
        "ok_title": "You are signed in",
        "ok_body": "{user} is signed in for {connection}. You can close this window.",
        "fail_title": "Sign-in failed",
        "lang": "en",
    },
    "nl": {
        "ok_title": "U bent aangemeld",
        "ok_body": "{user} is aangemeld voor {connection}. U kunt dit venster sluiten.",
        "fail_title": "Aanmelden is mislukt",
        "lang": "nl",
    },
}


def pick_language(accept_language: str | None) -> str:
    """`nl` or `en`: the first of the two the browser prefers (q-values honoured); default en."""
    best, best_q = "en", -1.0
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        primary = tag.strip().lower().split("-")[0]
        # Earlier entries win ties, as browsers list them in preference order.
        score = q - position * 1e-6
        if primary in TEXTS and q > 0 and score > best_q:
            best, best_q = primary, score
    return best


def render(
    language: str, *, ok: bool, user: str = "", connection: str = "", message: str = ""
) -> str:
    """The page; every value is HTML-escaped (user names and messages come from requests)."""
    t = TEXTS.get(language, TEXTS["en"])
    title = t["ok_title"] if ok else t["fail_title"]
    if ok:
        body = t["ok_body"].format(user=html.escape(user), connection=html.escape(connection))
    else:
        body = html.escape(message)
    return (
        f'<!doctype html><html lang="{t["lang"]}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;"
        "padding:0 1rem;color:#222}h1{font-size:1.4rem}</style></head>"
        f'<body><h1 id="result" data-ok="{str(ok).lower()}">{html.escape(title)}</h1>'
        f'<p id="message">{body}</p></body></html>'
    )
