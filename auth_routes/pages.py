"""The small result page of a per-user sign-in, wholly in Dutch or English (Accept-Language)."""

from __future__ import annotations

import html
import string

# Every text of the page per language: titles, the success line, and one line per refusal
# (SignInError.reason, with its params). A reason without a line of its own gets "failed".
TEXTS = {
    "en": {
        "ok_title": "You are signed in",
        "ok_body": "{user} is signed in for {connection}. You can close this window.",
        "fail_title": "Sign-in failed",
        "failed": "The sign-in did not work. Start it again from the link you were given.",
        "not_available": (
            "This sign-in link is not valid. Check the link, or ask whoever sent it for a new one."
        ),
        "user_missing": "Add ?user=<your e-mail address> to the sign-in link.",
        "vault_unavailable": "Key Vault is unavailable; try again in a minute.",
        "state_invalid": "This sign-in link has expired or is not valid. Start the sign-in again.",
        "return_url_characters": "returnUrl contains characters that are not allowed.",
        "return_url_scheme": "returnUrl must be an https URL.",
        "return_url_port": "returnUrl has an invalid port.",
        "return_url_host": "returnUrl points at a host this connection does not allow.",
        "other_connection": "This sign-in belongs to another connection.",
        "other_browser": (
            "This sign-in was started in another browser. Open the sign-in link again here."
        ),
        "not_signed_in": "Microsoft did not sign you in ({error}). Start the sign-in again.",
        "no_code": "The sign-in answer has no code. Start the sign-in again.",
        "refused": "Microsoft refused the sign-in ({error}). Start it again.",
        "wrong_account": (
            "You signed in as {signed_in}, but this link is for {user}. Nothing was stored; "
            "sign in with {user}."
        ),
        "no_identity": (
            "The sign-in answer does not say which account signed in (tid, oid). Nothing was "
            "stored."
        ),
        "other_tenant": (
            "You signed in with an account of another organisation. Nothing was stored; sign in "
            "with your account in this connection's organisation."
        ),
        "app_error": (
            "The sign-in could not be completed ({code}). Try again later, or tell your "
            "administrator."
        ),
        "someone_else": "another account",
        "lang": "en",
    },
    "nl": {
        "ok_title": "U bent aangemeld",
        "ok_body": "{user} is aangemeld voor {connection}. U kunt dit venster sluiten.",
        "fail_title": "Aanmelden is mislukt",
        "failed": "Het aanmelden is niet gelukt. Begin opnieuw met de link die u kreeg.",
        "not_available": (
            "Deze aanmeldlink is niet geldig. Controleer de link, of vraag de afzender om een "
            "nieuwe."
        ),
        "user_missing": "Voeg ?user=<uw e-mailadres> toe aan de aanmeldlink.",
        "vault_unavailable": "Key Vault is niet bereikbaar; probeer het over een minuut opnieuw.",
        "state_invalid": (
            "Deze aanmeldlink is verlopen of niet geldig. Begin opnieuw met aanmelden."
        ),
        "return_url_characters": "returnUrl bevat tekens die niet zijn toegestaan.",
        "return_url_scheme": "returnUrl moet een https-adres zijn.",
        "return_url_port": "returnUrl heeft een ongeldige poort.",
        "return_url_host": "returnUrl wijst naar een host die deze verbinding niet toestaat.",
        "other_connection": "Deze aanmelding hoort bij een andere verbinding.",
        "other_browser": (
            "Deze aanmelding is in een andere browser begonnen. Open de aanmeldlink hier opnieuw."
        ),
        "not_signed_in": "Microsoft heeft u niet aangemeld ({error}). Begin opnieuw.",
        "no_code": "Het antwoord op de aanmelding bevat geen code. Begin opnieuw.",
        "refused": "Microsoft heeft de aanmelding geweigerd ({error}). Begin opnieuw.",
        "wrong_account": (
            "U bent aangemeld als {signed_in}, maar deze link is voor {user}. Er is niets "
            "opgeslagen; meld u aan als {user}."
        ),
        "no_identity": (
            "Het antwoord op de aanmelding zegt niet welk account zich aanmeldde (tid, oid). Er is "
            "niets opgeslagen."
        ),
        "other_tenant": (
            "U bent aangemeld met een account van een andere organisatie. Er is niets opgeslagen; "
            "meld u aan met uw account in de organisatie van deze verbinding."
        ),
        "app_error": (
            "Het aanmelden kon niet worden afgerond ({code}). Probeer het later opnieuw, of "
            "meld het aan uw beheerder."
        ),
        "someone_else": "een ander account",
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


def failure_text(language: str, reason: str, params: dict[str, str]) -> str:
    """The refusal in `language`; a reason or a placeholder it does not know falls back to the
    generic line, so no English (or raw placeholder) ends up on a Dutch page."""
    t = TEXTS.get(language, TEXTS["en"])
    template = t.get(reason, t["failed"])
    values = {"signed_in": t["someone_else"], **{k: v for k, v in params.items() if v}}
    needed = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    if not needed <= set(values):
        template = t["failed"]
    return template.format(**values)


def render(
    language: str,
    *,
    ok: bool,
    user: str = "",
    connection: str = "",
    reason: str = "failed",
    params: dict[str, str] | None = None,
) -> str:
    """The page; every value is HTML-escaped (user names and error codes come from requests)."""
    t = TEXTS.get(language, TEXTS["en"])
    title = t["ok_title"] if ok else t["fail_title"]
    if ok:
        body = t["ok_body"].format(user=html.escape(user), connection=html.escape(connection))
    else:
        body = html.escape(failure_text(language, reason, params or {}))
    return (
        f'<!doctype html><html lang="{t["lang"]}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;"
        "padding:0 1rem;color:#222}h1{font-size:1.4rem}</style></head>"
        f'<body><h1 id="result" data-ok="{str(ok).lower()}">{html.escape(title)}</h1>'
        f'<p id="message">{body}</p></body></html>'
    )
