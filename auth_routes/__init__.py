"""Blueprint: per-user sign-in, GET /api/auth/{connection}/login and /callback (anonymous).

Anonymous because a person's browser calls them; what protects them is the sealed state, PKCE,
the nonce, the browser-binding cookie and the check that the account that signed in is the
user that was asked for (auth_routes.flow).
"""

import azure.functions as func

from auth_routes.pages import pick_language, render
from shared.api.http import Request, RequestHead, Response, request_head, run_blocking
from shared.identity.signin import BINDING_COOKIE, STATE_TTL_SECONDS, SignInError, base_url

bp = func.Blueprint()

# No caching, no framing, no scripts, and no Referer: the callback URL carries the code.
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _page(head: RequestHead, status: int, **kw) -> Response:
    language = pick_language(head.headers.get("accept-language"))
    return Response(
        content=render(language, **kw),
        status_code=status,
        headers={**_PAGE_HEADERS, "Content-Language": language},
        media_type="text/html",  # Starlette adds "; charset=utf-8"
    )


def _cookie(value: str, base: str, max_age: int) -> str:
    secure = "; Secure" if base.startswith("https://") else ""
    attributes = f"Path=/api/auth/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
    return f"{BINDING_COOKIE}={value}; {attributes}"


def _base(head: RequestHead) -> str:
    from shared.runtime import get_runtime

    return base_url(get_runtime().settings.public_base_url, head.url)


@bp.function_name("auth_login")
@bp.route(route="auth/{connection}/login", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def auth_login(req: Request) -> Response:
    """Send the browser to Microsoft (or the sandbox) to sign `user` in."""
    return await run_blocking(_login, request_head(req))


def _login(head: RequestHead) -> Response:
    from auth_routes import flow
    from shared.runtime import get_runtime

    base = _base(head)
    try:
        started = flow.start(
            get_runtime(),
            head.route.get("connection", ""),
            head.query.get("user"),
            head.query.get("returnUrl"),
            base,
        )
    except SignInError as exc:
        return _page(head, exc.status, ok=False, reason=exc.reason, params=exc.params)
    headers = {
        **_PAGE_HEADERS,
        "Location": started.location,
        "Set-Cookie": _cookie(started.binding, base, STATE_TTL_SECONDS),
    }
    return Response(status_code=302, headers=headers)


@bp.function_name("auth_callback")
@bp.route(route="auth/{connection}/callback", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def auth_callback(req: Request) -> Response:
    """Store the user's sign-in (only if the right account signed in) and show the result."""
    return await run_blocking(_callback, request_head(req))


def _callback(head: RequestHead) -> Response:
    from auth_routes import flow
    from shared.runtime import get_runtime

    base = _base(head)
    try:
        done = flow.finish(
            get_runtime(),
            head.route.get("connection", ""),
            dict(head.query),
            head.headers.get("cookie"),
            base,
        )
    except SignInError as exc:
        return _page(head, exc.status, ok=False, reason=exc.reason, params=exc.params)
    clear = _cookie("", base, 0)
    if done.return_url:
        headers = {**_PAGE_HEADERS, "Location": done.return_url, "Set-Cookie": clear}
        return Response(status_code=302, headers=headers)
    response = _page(head, 200, ok=True, user=done.user, connection=done.connection)
    response.headers["Set-Cookie"] = clear
    return response
