"""Permission audit of one connection: can its sign-in act in each sender mailbox it may use?

For each `allowedSenders` address that is a concrete mailbox (and for `*@domain`, the mailboxes
the caller names): a token; Full Access (reading the mailbox's Sent Items); creating and deleting
a draft there; Send As / Send on Behalf. Microsoft Graph has no API that reads mailbox
permissions (Full Access, Send As and Send on Behalf are Exchange settings, read with
Get-MailboxPermission, Get-RecipientPermission and Get-Mailbox), so Full Access and drafts are
tested by doing, and Send As only by sending: without `send_test` it is reported as not
checkable. App-only connections: a 403 on reading the mailbox means the app's Exchange RBAC for
Applications management scope does not cover it. Every failing check names the PowerShell that
grants what is missing.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote

from shared.errors import (
    AccessDenied,
    AppError,
    MailboxNotFound,
    ReauthRequired,
    SendAsDenied,
)
from shared.health.records import reason
from shared.identity.connections import Connection, sender_allowed

OK, MISSING, FAILED, NOT_CHECKABLE, SKIPPED = (
    "ok",
    "missing",
    "failed",
    "not_checkable",
    "skipped",
)
FAILING = (MISSING, FAILED)
AUDIT_SUBJECT = "exchange-processor permission audit"


@dataclass
class Check:
    """One audit check: its outcome, what it means and the grant that fixes it."""

    check: str  # token, fullAccess, draft, sendAs, appScope, allowed
    status: str
    message: str
    grant: str | None = None

    @property
    def failing(self) -> bool:
        return self.status in FAILING


@dataclass
class MailboxAudit:
    mailbox: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(c.failing for c in self.checks)


@dataclass
class AuditReport:
    connection: str
    mode: str
    account: str | None
    sign_in: Check | None
    mailboxes: list[MailboxAudit]
    uncovered: list[str]

    @property
    def ok(self) -> bool:
        signed_in = self.sign_in is None or not self.sign_in.failing
        return signed_in and all(m.ok for m in self.mailboxes)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.connection,
            "mode": self.mode,
            "account": self.account,
            "ok": self.ok,
            "signIn": asdict(self.sign_in) if self.sign_in else None,
            "mailboxes": [
                {"mailbox": m.mailbox, "ok": m.ok, "checks": [asdict(c) for c in m.checks]}
                for m in self.mailboxes
            ],
            "uncovered": self.uncovered,
        }


def full_access_grant(mailbox: str, trustee: str) -> str:
    return (
        f"Add-MailboxPermission -Identity {mailbox} -User {trustee} -AccessRights FullAccess "
        "-InheritanceType All -AutoMapping $false"
    )


def send_as_grant(mailbox: str, trustee: str) -> str:
    return (
        f"Add-RecipientPermission -Identity {mailbox} -Trustee {trustee} -AccessRights SendAs "
        "-Confirm:$false"
    )


def send_on_behalf_grant(mailbox: str, trustee: str) -> str:
    return f'Set-Mailbox -Identity {mailbox} -GrantSendOnBehalfTo @{{Add="{trustee}"}}'


def app_scope_grant(mailbox: str, client_id: str) -> str:
    scope = f"exchange-processor {mailbox}"
    return (
        f'New-ManagementScope -Name "{scope}" -RecipientRestrictionFilter '
        f"\"PrimarySmtpAddress -eq '{mailbox}'\"; "
        f'New-ManagementRoleAssignment -App {client_id} -Role "Application Mail.ReadWrite" '
        f'-CustomResourceScope "{scope}"; '
        f'New-ManagementRoleAssignment -App {client_id} -Role "Application Mail.Send" '
        f'-CustomResourceScope "{scope}"'
    )


def mailboxes_to_audit(connection: Connection, extra: list[str]) -> tuple[list[str], list[str]]:
    """(concrete mailboxes to check, `*@domain` patterns nobody named a mailbox for)."""
    concrete = [s.strip().lower() for s in connection.allowed_senders if not s.startswith("*@")]
    named = [m.strip().lower() for m in extra if m.strip()]
    wanted = list(dict.fromkeys([*concrete, *named]))
    patterns = [s for s in connection.allowed_senders if s.startswith("*@")]
    uncovered = [p for p in patterns if not any(m.endswith("@" + p[2:].lower()) for m in named)]
    return wanted, uncovered


class Auditor:
    """Runs the audit of one connection with a Runtime (the app's, or the admin CLI's)."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    def audit(
        self, name: str, *, mailboxes: list[str] | None = None, send_test: bool = False
    ) -> AuditReport:
        """Raises UnknownConnection (and SecretsUnavailable) only; every other problem is a
        check in the report."""
        conn = self.runtime.connections.get(name)
        wanted, uncovered = mailboxes_to_audit(conn, list(mailboxes or []))
        account = conn.account or None
        report = AuditReport(conn.name, conn.mode, account, None, [], uncovered)
        if conn.mode != "user":
            report.sign_in = self._token(conn, None)
        for mailbox in wanted:
            audit = MailboxAudit(mailbox)
            report.mailboxes.append(audit)
            if not sender_allowed(conn.allowed_senders, mailbox):
                audit.checks.append(
                    Check("allowed", FAILED, f"{mailbox} is not one of the connection's senders")
                )
                continue
            user = mailbox if conn.mode == "user" else None
            token = report.sign_in if report.sign_in is not None else self._token(conn, user)
            if conn.mode == "user":
                audit.checks.append(token)
            if token.failing:
                audit.checks.append(Check("mailbox", SKIPPED, "no token: sign in first"))
                continue
            audit.checks += self._mailbox_checks(conn, mailbox, user, send_test)
        return report

    # --- checks ----------------------------------------------------------------------------

    def _token(self, conn: Connection, user: str | None) -> Check:
        who = user or conn.account or "the app"
        try:
            self.runtime.tokens.source(conn, user)()
        except ReauthRequired as exc:
            fix = exc.admin_command or exc.sign_in_url
            why = reason(exc.message) or "sign-in refused"
            return Check("token", FAILED, f"{who} must sign in again: {why}. {exc.message}", fix)
        except AppError as exc:
            return Check("token", FAILED, f"no token for {who}: {exc.message}")
        return Check("token", OK, f"token for {who}")

    def _graph(self, conn: Connection, user: str | None) -> Any:
        return self.runtime.context(conn.name, str(uuid.uuid4()), user).graph

    def _mailbox_checks(
        self, conn: Connection, mailbox: str, user: str | None, send_test: bool
    ) -> list[Check]:
        graph = self._graph(conn, user)
        box = quote(mailbox, safe="@")
        own = conn.mode == "user" and (user or "").lower() == mailbox
        trustee = user or conn.account or "<the service account>"
        app = conn.mode == "app"
        checks: list[Check] = []
        try:
            graph.get(f"/users/{box}/mailFolders/sentitems", params={"$select": "id"})
            what = "can read it" if app else ("own mailbox" if own else "Full Access")
            checks.append(Check("appScope" if app else "fullAccess", OK, what))
        except MailboxNotFound:
            return [Check("mailbox", FAILED, f"{mailbox} is not a mailbox of the tenant")]
        except AccessDenied:
            if app:
                checks.append(
                    Check(
                        "appScope",
                        MISSING,
                        "the app's Exchange RBAC for Applications scope does not cover this "
                        "mailbox (403 on reading it)",
                        app_scope_grant(mailbox, conn.client_id),
                    )
                )
            else:
                checks.append(
                    Check(
                        "fullAccess",
                        MISSING,
                        f"{trustee} has no Full Access (403 on reading Sent Items)",
                        full_access_grant(mailbox, trustee),
                    )
                )
        except AppError as exc:
            checks.append(Check("fullAccess", FAILED, exc.message))
        if checks[-1].status == OK:
            checks.append(self._draft(graph, box, mailbox, trustee, app))
        else:
            checks.append(Check("draft", SKIPPED, "needs the mailbox's Full Access first"))
        checks.append(self._send(graph, box, mailbox, trustee, conn, own, send_test))
        return checks

    def _draft(self, graph: Any, box: str, mailbox: str, trustee: str, app: bool) -> Check:
        try:
            created = graph.post(
                f"/users/{box}/messages",
                json={"subject": AUDIT_SUBJECT, "body": {"contentType": "text", "content": ""}},
            )
            draft_id = (created or {}).get("id", "")
            graph.request("DELETE", f"/users/{box}/messages/{quote(draft_id, safe='')}")
        except AccessDenied:
            grant = None if app else full_access_grant(mailbox, trustee)
            return Check("draft", MISSING, "creating a draft was refused (403)", grant)
        except AppError as exc:
            return Check("draft", FAILED, exc.message)
        return Check("draft", OK, "created and deleted a draft")

    def _send(
        self,
        graph: Any,
        box: str,
        mailbox: str,
        trustee: str,
        conn: Connection,
        own: bool,
        send_test: bool,
    ) -> Check:
        if conn.mode == "app" or own:
            why = "the app sends as the mailbox itself" if conn.mode == "app" else "own mailbox"
            if not send_test:
                return Check("sendAs", OK, f"not needed: {why}")
        elif not send_test:
            return Check(
                "sendAs",
                NOT_CHECKABLE,
                "Send As / Send on Behalf are not checkable without sending (Graph cannot read "
                "mailbox permissions); run with --send-test to send a test mail to the mailbox",
                send_as_grant(mailbox, trustee),
            )
        # Through /me for a delegated sign-in: the Send As check without Full Access.
        path = f"/users/{box}/sendMail" if conn.mode == "app" else "/me/sendMail"
        message = {
            "subject": f"{AUDIT_SUBJECT} (send test)",
            "body": {"contentType": "text", "content": "A test mail from the permission audit."},
            "from": {"emailAddress": {"address": mailbox}},
            "toRecipients": [{"emailAddress": {"address": mailbox}}],
        }
        try:
            graph.post(path, json={"message": message, "saveToSentItems": False})
        except SendAsDenied:
            return Check(
                "sendAs",
                MISSING,
                f"{trustee} may not send as {mailbox} (ErrorSendAsDenied); or grant Send on "
                f"Behalf: {send_on_behalf_grant(mailbox, trustee)}",
                send_as_grant(mailbox, trustee),
            )
        except AppError as exc:
            return Check("sendAs", FAILED, exc.message)
        return Check("sendAs", OK, f"sent a test mail from {mailbox} to itself")
