"""The sandbox's web view: tenants → mailboxes → folders → messages, outbound, requests, faults."""

from __future__ import annotations

import json
import re
from html import escape
from typing import Any
from urllib.parse import quote, unquote

from sandbox.context import SandboxContext
from sandbox.graph.mime import CHUNK_BYTES, MimeBuilder
from sandbox.web import Request, Response

# No script may run anywhere in the web view; mail bodies are also in a sandboxed iframe.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'self'"
)
STYLE = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,sans-serif;color:#1d2330;background:#f5f6f8}
header{background:#1f3a5f;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.2rem;
align-items:center}

header a{color:#dfe8f5;text-decoration:none}header a:hover{color:#fff}header b{margin-right:1rem}
main{padding:1rem 1.2rem;max-width:1200px}
h1{font-size:1.3rem;margin:.2rem 0 1rem}
h2{font-size:1.05rem;margin:1.2rem 0 .5rem}a{color:#1f5fa8}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde1e7}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #eceff3;vertical-align:top}
th{background:#f0f2f5;font-weight:600}tr.fault td{background:#fff1e6}tr.error td{color:#a1261c}
.card{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:.8rem 1rem;
margin-bottom:1rem}
.muted{color:#6b7380}
.pill{display:inline-block;padding:0 .45rem;border-radius:9px;background:#e4ecf7;font-size:12px}
.crumbs{margin-bottom:.6rem}.grid{display:grid;grid-template-columns:220px 1fr;gap:1rem}
iframe{width:100%;min-height:360px;border:1px solid #dde1e7;background:#fff}
pre{white-space:pre-wrap}
form.inline{display:inline}
input,select{font:inherit;padding:.2rem .3rem}button{font:inherit;padding:.25rem .7rem}
dl{display:grid;grid-template-columns:150px 1fr;margin:0}dt{color:#6b7380}dd{margin:0 0 .2rem}
"""


def e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _page(title: str, body: str, status: int = 200) -> Response:
    html = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<meta name=viewport content='width=device-width'><title>{e(title)} · sandbox</title>"
        f"<style>{STYLE}</style></head><body><header><b>M365 sandbox</b>"
        "<a href='/'>Mailboxes</a><a href='/ui/outbound'>Outbound</a>"
        "<a href='/ui/requests'>Requests</a><a href='/ui/faults'>Faults</a></header>"
        f"<main>{body}</main></body></html>"
    )
    return Response.html(
        html, status, {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"}
    )


def _not_found(what: str) -> Response:
    return _page("Not found", f"<h1>Not found</h1><p>{e(what)}</p>", 404)


def _who(rcpt: dict[str, Any] | None) -> str:
    email = (rcpt or {}).get("emailAddress") or {}
    if not email:
        return "<span class=muted>—</span>"
    name, address = email.get("name"), email.get("address")
    return f"{e(name)} &lt;{e(address)}&gt;" if name else e(address)


def _whos(rcpts: list[dict[str, Any]] | None) -> str:
    return ", ".join(_who(r) for r in rcpts or []) or "<span class=muted>—</span>"


def _address(rcpt: dict[str, Any]) -> str:
    return str((rcpt.get("emailAddress") or {}).get("address") or "").lower()


def _from(data: dict[str, Any]) -> str:
    """Who a message is from, as Outlook shows Send on Behalf: "sender on behalf of from"."""
    sender, origin = data.get("sender"), data.get("from")
    if sender and origin and _address(sender) != _address(origin):
        return f"{_who(sender)} <span class=pill>on behalf of</span> {_who(origin)}"
    return _who(origin or sender)


def _flag(data: dict[str, Any]) -> str:
    flag = data.get("flag") or {}
    status = flag.get("flagStatus") or "notFlagged"
    due = (flag.get("dueDateTime") or {}).get("dateTime")
    return e(status) + (f" <span class=muted>due {e(due)}</span>" if due else "")


def _on_behalf(entry: dict[str, Any]) -> str:
    if entry["sender"] == entry["from"]:
        return ""
    return f" <span class=muted>(sender {e(entry['sender'])})</span>"


class WebView:
    """Server-rendered pages over the Graph store and the control state."""

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx

    @property
    def graph(self) -> Any:
        return self.ctx.extras.get("graph")

    def _mailbox(self, tenant: str, mailbox: str) -> Any:
        return self.ctx.directory.mailbox(unquote(tenant), unquote(mailbox))

    def home(self, req: Request) -> Response:
        parts = ["<h1>Tenants and mailboxes</h1>"]
        for tenant in self.ctx.directory.tenants():
            rows = []
            for box in self.ctx.directory.mailboxes(tenant.id):
                count = len(self.graph.store.messages(box.id)) if self.graph else 0
                href = f"/ui/mailboxes/{quote(tenant.domain)}/{quote(box.address)}"
                rows.append(
                    f"<tr><td><a href='{e(href)}'>{e(box.address)}</a></td>"
                    f"<td>{e(box.display_name)}</td><td><span class=pill>{e(box.kind)}</span></td>"
                    f"<td>{count}</td></tr>"
                )
            parts.append(
                f"<div class=card><h2>{e(tenant.display_name)} <span class=muted>"
                f"{e(tenant.domain)} · {e(tenant.id)}</span></h2><table><tr><th>Mailbox</th>"
                f"<th>Name</th><th>Kind</th><th>Messages</th></tr>{''.join(rows)}</table></div>"
            )
        return _page("Mailboxes", "".join(parts))

    def _folder_nav(self, tenant: str, box: Any, current: str | None) -> str:
        store = self.graph.store
        by_parent: dict[str | None, list] = {}
        for row in store.folders(box.id):
            by_parent.setdefault(row["parent_id"], []).append(row)
        root = next(r for r in by_parent.get(None, []))

        def render(parent_id: str) -> str:
            items = []
            for row in by_parent.get(parent_id, []):
                total = store.folder_counts(row["id"])[1]
                href = (
                    f"/ui/mailboxes/{quote(tenant)}/{quote(box.address)}/folders/"
                    f"{quote(row['id'], safe='')}"
                )
                label = e(row["name"])
                if row["id"] == current:
                    label = f"<b>{label}</b>"
                items.append(
                    f"<li><a href='{e(href)}'>{label}</a> <span class=muted>{total}</span>"
                    f"{render(row['id'])}</li>"
                )
            return f"<ul>{''.join(items)}</ul>" if items else ""

        return f"<nav class=card>{render(root['id'])}</nav>"

    def mailbox(self, req: Request) -> Response:
        tenant, address = req.params["tenant"], req.params["mailbox"]
        box = self._mailbox(tenant, address)
        if box is None or self.graph is None:
            return _not_found(f"No mailbox {address} in {tenant}.")
        inbox = self.graph.store.folder(box.id, "inbox")
        return self._folder_page(tenant, box, inbox)

    def folder(self, req: Request) -> Response:
        tenant, address = req.params["tenant"], req.params["mailbox"]
        box = self._mailbox(tenant, address)
        if box is None or self.graph is None:
            return _not_found(f"No mailbox {address} in {tenant}.")
        folder = self.graph.store.folder(box.id, unquote(req.params["folder"]))
        if folder is None:
            return _not_found("No such folder.")
        return self._folder_page(tenant, box, folder)

    def _folder_page(self, tenant: str, box: Any, folder: Any) -> Response:
        rows = []
        for row in self.graph.store.messages(box.id, folder["id"]):
            data = json.loads(row["data"])
            att = (
                ' <span class="muted">· attachment</span>'
                if self.graph.store.attachments(row["immutable_id"])
                else ""
            )
            draft = " <span class=pill>draft</span>" if data.get("isDraft") else ""
            rows.append(
                f"<tr><td><a href='/ui/messages/{e(quote(row['immutable_id'], safe=''))}'>"
                f"{e(data.get('subject') or '(no subject)')}</a>{draft}{att}</td>"
                f"<td>{_from(data)}</td><td>{_whos(data.get('toRecipients'))}</td>"
                f"<td class=muted>{e(data.get('sentDateTime') or data.get('createdDateTime'))}"
                "</td></tr>"
            )
        table = (
            "<table><tr><th>Subject</th><th>From</th><th>To</th><th>Date</th></tr>"
            + ("".join(rows) or "<tr><td colspan=4 class=muted>No messages.</td></tr>")
            + "</table>"
        )
        threads = f"/ui/mailboxes/{quote(tenant)}/{quote(box.address)}/conversations"
        body = (
            f"<div class=crumbs><a href='/'>{e(tenant)}</a> › {e(box.address)} › "
            f"{e(folder['name'])} · <a href='{e(threads)}'>conversations</a></div>"
            f"<h1>{e(box.display_name)} — {e(folder['name'])}</h1>"
            f"<div class=grid>{self._folder_nav(tenant, box, folder['id'])}<div>{table}</div></div>"
        )
        return _page(f"{box.address} {folder['name']}", body)

    def _thread_rows(self, box_id: str, conversation_id: str | None, current: str = "") -> str:
        """Rows of every message of one conversation in one mailbox, oldest first."""
        store = self.graph.store
        items = []
        for row in store.messages(box_id):
            data = json.loads(row["data"])
            if conversation_id and data.get("conversationId") == conversation_id:
                items.append((data.get("sentDateTime") or data.get("createdDateTime") or "", row))
        rows = []
        for when, row in sorted(items, key=lambda x: (x[0], x[1]["seq"])):
            data = json.loads(row["data"])
            folder = store.folder_by_id(row["folder_id"])
            subject = e(data.get("subject") or "(no subject)")
            if row["immutable_id"] == current:
                subject = f"<b>{subject}</b>"
            rows.append(
                f"<tr><td><a href='/ui/messages/{e(quote(row['immutable_id'], safe=''))}'>"
                f"{subject}</a></td><td>{_from(data)}</td>"
                f"<td class=muted>{e(folder['name'] if folder else '')}</td>"
                f"<td class=muted>{e(when)}</td></tr>"
            )
        return "".join(rows)

    def conversations(self, req: Request) -> Response:
        """A mailbox's mail grouped by conversation (what Outlook's conversation view shows)."""
        tenant, address = req.params["tenant"], req.params["mailbox"]
        box = self._mailbox(tenant, address)
        if box is None or self.graph is None:
            return _not_found(f"No mailbox {address} in {tenant}.")
        groups: dict[str, list[dict[str, Any]]] = {}
        for row in self.graph.store.messages(box.id):
            data = json.loads(row["data"])
            groups.setdefault(data.get("conversationId") or row["immutable_id"], []).append(data)
        cards = []
        for conversation_id, items in sorted(
            groups.items(),
            key=lambda kv: max(d.get("sentDateTime") or "" for d in kv[1]),
            reverse=True,
        ):
            first = min(items, key=lambda d: d.get("sentDateTime") or "")
            cards.append(
                f"<div class=card><h2>{e(first.get('subject') or '(no subject)')} "
                f"<span class=pill>{len(items)} message{'s' if len(items) != 1 else ''}"
                f"</span></h2><table>{self._thread_rows(box.id, conversation_id)}</table></div>"
            )
        body = (
            f"<div class=crumbs><a href='/'>{e(tenant)}</a> › "
            f"<a href='/ui/mailboxes/{e(quote(tenant))}/{e(quote(box.address))}'>"
            f"{e(box.address)}</a> › conversations</div>"
            f"<h1>{e(box.display_name)} — conversations</h1>"
            + ("".join(cards) or "<p class=muted>No messages.</p>")
        )
        return _page(f"{box.address} conversations", body)

    def _message_row(self, req: Request) -> tuple[dict, dict] | Response:
        """The stored row and data of the page's message, or the 404 page that says why not."""
        if self.graph is None:
            return _not_found("Graph is not available.")
        row = self.graph.store.message_anywhere(unquote(req.params["message"]))
        if row is None:
            return _not_found("No such message (it may have moved: ids change on a move).")
        return row, json.loads(row["data"])

    def message(self, req: Request) -> Response:
        found = self._message_row(req)
        if isinstance(found, Response):
            return found
        row, data = found
        store = self.graph.store
        folder = store.folder_by_id(row["folder_id"])
        box = next((m for m in self.ctx.directory.mailboxes() if m.id == row["mailbox"]), None)
        tenant = self.ctx.directory.tenant(box.tenant_id).domain if box else ""
        body = data.get("body") or {}
        if body.get("contentType") == "html":
            # sandbox="" (no allow-scripts, no allow-same-origin) plus the page CSP: a mail's
            # <script> or onerror= never runs and cannot reach this page.
            shown = (
                f"<iframe sandbox='' referrerpolicy=no-referrer title='Message body' "
                f"srcdoc='{e(body.get('content'))}'></iframe>"
            )
        else:
            shown = f"<pre class=card>{e(body.get('content'))}</pre>"
        atts = "".join(
            f"<li><a href='/ui/attachments/{e(quote(a['id'], safe=''))}' download='{e(a['name'])}'>"
            f"{e(a['name'])}</a>"
            f" <span class=muted>"
            f"{'attached mail' if a['kind'] == 'item' else e(a['content_type'])} · "
            f"{a['size']:,} bytes"
            f"{' · inline ' + e(a['content_id']) if a['is_inline'] else ''}</span></li>"
            for a in store.attachments(row["immutable_id"])
        )
        headers = "".join(
            f"<dt>{e(h.get('name'))}</dt><dd>{e(h.get('value'))}</dd>"
            for h in data.get("internetMessageHeaders") or []
        )
        props = "".join(
            f"<dt>{e(p.get('id'))}</dt><dd>{e(p.get('value'))}</dd>"
            for p in data.get("singleValueExtendedProperties") or []
        )
        facts = [
            ("From", _from(data)),
            ("Sender", _who(data.get("sender"))),
            ("To", _whos(data.get("toRecipients"))),
            ("Cc", _whos(data.get("ccRecipients"))),
            ("Bcc", _whos(data.get("bccRecipients"))),
            ("Reply-To", _whos(data.get("replyTo"))),
            ("Sent", e(data.get("sentDateTime"))),
            ("Received", e(data.get("receivedDateTime"))),
            ("Importance", e(data.get("importance"))),
            ("Categories", e(", ".join(data.get("categories") or [])) or "—"),
            ("Flag", _flag(data)),
            ("Read", "yes" if data.get("isRead") else "no"),
            ("Read receipt requested", "yes" if data.get("isReadReceiptRequested") else "no"),
            (
                "Delivery receipt requested",
                "yes" if data.get("isDeliveryReceiptRequested") else "no",
            ),
            ("Draft", "yes" if data.get("isDraft") else "no"),
            ("Internet message id", e(data.get("internetMessageId"))),
            ("Conversation id", e(data.get("conversationId"))),
            ("REST id", e(row["id"])),
            ("Immutable id", e(row["immutable_id"])),
        ]
        thread = self._thread_rows(row["mailbox"], data.get("conversationId"), row["immutable_id"])
        back = ""
        if box and folder:
            href = (
                f"/ui/mailboxes/{quote(tenant)}/{quote(box.address)}/folders/"
                f"{quote(folder['id'], safe='')}"
            )
            back = (
                f"<div class=crumbs><a href='/'>{e(tenant)}</a> › {e(box.address)} › "
                f"<a href='{e(href)}'>{e(folder['name'])}</a></div>"
            )
        eml = f"/ui/messages/{e(quote(row['immutable_id'], safe=''))}/eml"
        page = (
            f"{back}<h1>{e(data.get('subject') or '(no subject)')}</h1>"
            f"<p><a href='{eml}' download>Download .eml</a></p><div class=card><dl>"
            + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
            + "</dl></div>"
            + f"<h2>Conversation</h2><div class=card><table>{thread}</table></div>"
            + (f"<h2>Attachments</h2><ul class=card>{atts}</ul>" if atts else "")
            + (
                f"<h2>Internet message headers</h2><div class=card><dl>{headers}</dl></div>"
                if headers
                else ""
            )
            + (
                f"<h2>Extended properties</h2><div class=card><dl>{props}</dl></div>"
                if props
                else ""
            )
            + f"<h2>Body <span class=muted>({e(body.get('contentType'))})</span></h2>{shown}"
        )
        return _page(data.get("subject") or "Message", page)

    def eml(self, req: Request) -> Response:
        """The message's MIME (what Graph's $value answers) as a .eml download."""
        found = self._message_row(req)
        if isinstance(found, Response):
            return found
        row, data = found
        store = self.graph.store
        builder = MimeBuilder(store.attachments, lambda att: store.blob_chunks(att, CHUNK_BYTES))
        rendering = builder.render(data, row["immutable_id"])
        name = re.sub(r'[\x00-\x1f\x7f"\\/]+', " ", data.get("subject") or "message").strip()
        return Response(
            200,
            rendering.chunks(),
            {
                "Content-Type": "message/rfc822",
                "Content-Length": str(rendering.size),
                "Content-Disposition": (
                    f"attachment; filename*=UTF-8''{quote((name or 'message')[:120] + '.eml')}"
                ),
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "sandbox",
            },
        )

    def attachment(self, req: Request) -> Response:
        if self.graph is None:
            return _not_found("Graph is not available.")
        att = self.graph.store.attachment_by_id(unquote(req.params["attachment"]))
        if att is None:
            return _not_found("No such attachment.")
        name = att["name"].replace('"', "")
        return Response(
            200,
            self.graph.store.content(att),
            {
                # An attached mail is kept as its Graph fields (JSON).
                "Content-Type": "application/json"
                if att["kind"] == "item"
                else att["content_type"],
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "sandbox",
            },
        )

    def outbound(self, req: Request) -> Response:
        entries = self.graph.store.outbound(500) if self.graph else []
        rows = "".join(
            f"<tr><td class=muted>{e(o['time'])}</td><td>{e(o['from'])}"
            f"{_on_behalf(o)}"
            f"</td><td>{e(', '.join(o['recipients']))}</td><td>{e(o['subject'])}</td>"
            f"<td class=muted>{e(o['internetMessageId'])}</td></tr>"
            for o in entries
        )
        body = (
            "<h1>Outbound mail</h1><p class=muted>Messages to addresses that no sandbox mailbox "
            "owns. Nothing leaves this machine.</p><table><tr><th>Time</th><th>From</th>"
            "<th>To</th><th>Subject</th><th>Internet message id</th></tr>"
            + (rows or "<tr><td colspan=5 class=muted>Nothing sent outside yet.</td></tr>")
            + "</table>"
        )
        return _page("Outbound", body)

    def requests(self, req: Request) -> Response:
        entries = list(reversed(self.ctx.request_log.recent(300)))
        rows = []
        for r in entries:
            status = r.get("status")
            cls = "fault" if r.get("fault") else ("error" if (status or 0) >= 400 else "")
            rows.append(
                f"<tr class='{cls}'><td class=muted>{e(r.get('time'))}</td><td>{e(r.get('method'))}"
                f"</td><td>{e(r.get('path'))}</td>"
                f"<td>{e(status if status is not None else 'dropped')}</td>"
                f"<td>{e(r.get('fault') or '')}</td><td>{e(r.get('tenant'))}</td>"
                f"<td>{e(r.get('user') or r.get('app'))}</td>"
                f"<td class=muted>{e(r.get('durationMs'))}</td></tr>"
            )
        body = (
            "<h1>Recent requests</h1><p class=muted>Newest first; rows with an injected fault are "
            "highlighted.</p><table><tr><th>Time</th><th>Method</th><th>Path</th><th>Status</th>"
            "<th>Fault</th><th>Tenant</th><th>User / app</th><th>ms</th></tr>"
            + ("".join(rows) or "<tr><td colspan=8 class=muted>No requests yet.</td></tr>")
            + "</table>"
        )
        return _page("Requests", body)

    def faults(self, req: Request, message: str = "", status: int = 200) -> Response:
        rows = "".join(
            f"<tr><td>{e(f.get('method'))}</td><td><code>{e(f.get('path'))}</code></td>"
            f"<td>{e(f.get('action'))}</td><td>{e(f.get('status'))}</td><td>{e(f.get('delayMs'))}</td>"
            f"<td>{e(f.get('remaining') if f.get('remaining') is not None else '∞')}</td>"
            f"<td>{e(f.get('applied'))}</td></tr>"
            for f in self.ctx.faults.list()
        )
        note = f"<p class=card>{e(message)}</p>" if message else ""
        body = (
            f"<h1>Faults</h1>{note}<table><tr><th>Method</th><th>Path regex</th><th>Action</th>"
            "<th>Status</th><th>Delay ms</th><th>Remaining</th><th>Applied</th></tr>"
            + (
                rows
                or "<tr><td colspan=7 class=muted>No faults: everything answers normally.</td></tr>"
            )
            + "</table><h2>Inject a fault</h2><form class=card method=post action='/ui/faults'>"
            "<label>Method <select name=method><option>*</option><option>GET</option>"
            "<option>POST</option><option>PUT</option><option>PATCH</option><option>DELETE</option>"
            "</select></label> "
            "<label>Path regex <input name=path value='/v1\\.0/' size=30></label> "
            "<label>Action <select name=action><option>status</option><option>delay</option>"
            "<option>reset</option><option>accept_then_drop</option><option>drop_mid_body</option>"
            "</select></label> "
            "<label>Status <input name=status value=503 size=4></label> "
            "<label>Retry-After <input name=retryAfter value='' size=3></label> "
            "<label>Delay ms <input name=delayMs value=0 size=6></label> "
            "<label>Times <input name=times value='' size=3></label> "
            "<button>Add</button></form><form class=inline method=post action='/ui/faults/clear'>"
            "<button>Clear all faults</button></form>"
        )
        return _page("Faults", body, status)

    def _same_origin(self, req: Request) -> bool:
        # Forms change state: refuse cross-site posts (a page elsewhere must not inject faults).
        origin = req.headers.get("origin")
        return origin in (None, "null", "") or origin.rstrip("/") == self.ctx.base_url.rstrip("/")

    def add_fault(self, req: Request) -> Response:
        if not self._same_origin(req):
            return _page("Forbidden", "<h1>Cross-site form refused</h1>", 403)
        form = req.form()
        spec: dict[str, Any] = {
            "method": form.get("method") or "*",
            "path": form.get("path") or ".*",
            "action": form.get("action") or "status",
        }
        try:
            for key in ("status", "retryAfter", "delayMs", "times"):
                if form.get(key, "").strip():
                    spec[key] = int(form[key])
            self.ctx.faults.add(spec)
        except ValueError as exc:
            return self.faults(req, f"Not added: {exc}", 400)
        return Response.redirect("/ui/faults", 303)

    def clear_faults(self, req: Request) -> Response:
        if not self._same_origin(req):
            return _page("Forbidden", "<h1>Cross-site form refused</h1>", 403)
        self.ctx.faults.clear()
        return Response.redirect("/ui/faults", 303)


def register(ctx: SandboxContext) -> None:
    """Serve the web view at / and /ui/… (the server exempts these paths from faults)."""
    view = WebView(ctx)
    add = ctx.router.add
    add("GET", r"/", view.home)
    add("GET", r"/ui/?", view.home)
    add("GET", r"/ui/mailboxes/(?P<tenant>[^/]+)/(?P<mailbox>[^/]+)", view.mailbox)
    add(
        "GET",
        r"/ui/mailboxes/(?P<tenant>[^/]+)/(?P<mailbox>[^/]+)/folders/(?P<folder>[^/]+)",
        view.folder,
    )
    add(
        "GET",
        r"/ui/mailboxes/(?P<tenant>[^/]+)/(?P<mailbox>[^/]+)/conversations",
        view.conversations,
    )
    add("GET", r"/ui/messages/(?P<message>[^/]+)", view.message)
    add("GET", r"/ui/messages/(?P<message>[^/]+)/eml", view.eml)
    add("GET", r"/ui/attachments/(?P<attachment>[^/]+)", view.attachment)
    add("GET", r"/ui/outbound", view.outbound)
    add("GET", r"/ui/requests", view.requests)
    add("GET", r"/ui/faults", view.faults)
    add("POST", r"/ui/faults", view.add_fault)
    add("POST", r"/ui/faults/clear", view.clear_faults)
