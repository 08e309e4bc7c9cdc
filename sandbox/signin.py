"""HTML of the sandbox's sign-in, consent and device-code pages (plain forms, no scripts needed)."""

from __future__ import annotations

from html import escape
from typing import Any

STYLE = """
body{font-family:system-ui,sans-serif;background:#f2f2f2;margin:0}
main{max-width:440px;margin:8vh auto;background:#fff;padding:32px 40px;box-shadow:0 2px 6px #0003}
h1{font-size:1.4em;margin:0 0 .5em}label{display:block;margin:.8em 0 .2em}
input[type=text],input[type=email],input[type=password]{width:100%;padding:6px;box-sizing:border-box}
button{margin:1.2em .5em 0 0;padding:6px 18px}.error{color:#a80000}.muted{color:#666;font-size:.9em}
"""


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{body}<p class=muted>Sandbox sign-in: not Microsoft.</p></main></body></html>"
    )


def signin_page(
    app: Any,
    tenant: Any,
    query: str,
    permissions: list[str],
    username: str = "",
    error: str = "",
) -> str:
    """The combined sign-in and consent form; it posts back to the authorize URL."""
    items = "".join(f"<li>{escape(p)}</li>" for p in permissions)
    problem = f"<p class=error id=error>{escape(error)}</p>" if error else ""
    return _page(
        "Sign in",
        f"<h1>Sign in to {escape(tenant.display_name or tenant.domain)}</h1>"
        f"<p><b>{escape(app.display_name)}</b> wants to:</p><ul id=permissions>{items}</ul>"
        f"{problem}<form method=post>"
        f'<input type=hidden name=q value="{escape(query)}">'
        f"<label for=username>Email</label><input type=email id=username name=username "
        f'value="{escape(username)}" autocomplete=username>'
        "<label for=password>Password</label>"
        "<input type=password id=password name=password autocomplete=current-password>"
        "<button type=submit name=action value=accept id=accept>Sign in and accept</button>"
        "<button type=submit name=action value=cancel id=cancel>Cancel</button></form>",
    )


def device_page(error: str = "", code: str = "") -> str:
    problem = f"<p class=error id=error>{escape(error)}</p>" if error else ""
    return _page(
        "Enter code",
        "<h1>Enter code</h1><p>Enter the code shown by the app, then sign in.</p>"
        f"{problem}<form method=post>"
        f"<label for=user_code>Code</label><input type=text id=user_code name=user_code "
        f'value="{escape(code)}">'
        "<label for=username>Email</label><input type=email id=username name=username>"
        "<label for=password>Password</label><input type=password id=password name=password>"
        "<button type=submit id=next>Sign in</button></form>",
    )


def done_page(message: str) -> str:
    return _page("Signed in", f"<h1 id=done>{escape(message)}</h1>")


def error_page(message: str) -> str:
    return _page(
        "Sign-in error", f"<h1>Sorry, that did not work</h1><p class=error>{escape(message)}</p>"
    )


def form_post_page(uri: str, values: dict[str, str]) -> str:
    """response_mode=form_post: a form the browser submits to the redirect URI by itself."""
    fields = "".join(
        f'<input type=hidden name="{escape(k)}" value="{escape(v)}">' for k, v in values.items()
    )
    return (
        '<!doctype html><html><body onload="document.forms[0].submit()">'
        f'<form method=post action="{escape(uri)}">{fields}'
        "<noscript><button type=submit>Continue</button></noscript></form></body></html>"
    )
