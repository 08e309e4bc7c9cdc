"""Mail folders: list and create (top level and child folders), get one by id or well-known
name."""

from __future__ import annotations

import sqlite3

from sandbox.graph import odata, query
from sandbox.graph.call import Call
from sandbox.graph.errors import bad_request, item_not_found
from sandbox.graph.render import collection_context, entity_context, select_plain, with_context
from sandbox.graph.services import Services
from sandbox.web import Response

MB = r"(?:users/(?P<user>[^/]+)|me)"


class FolderOps:
    def __init__(self, svc: Services) -> None:
        self.svc = svc

    def routes(self) -> list[tuple[str, str, object]]:
        return [
            ("GET POST", rf"{MB}/mailFolders", self.folders),
            ("GET", rf"{MB}/mailFolders/(?P<folder>[^/]+)", self.get_folder),
            ("GET POST", rf"{MB}/mailFolders/(?P<folder>[^/]+)/childFolders", self.folders),
        ]

    def row(self, call: Call, ref: str) -> sqlite3.Row:
        """A folder of the URL's mailbox by id or well-known name; raises 404."""
        row = self.svc.store.folder(call.mailbox.id, ref)
        if row is None:
            raise item_not_found()
        return row

    def folders(self, call: Call) -> Response:
        """GET/POST mailFolders (top level) and mailFolders/{id}/childFolders."""
        call.allow(write=call.req.method == "POST")
        parent = self.row(call, call.params.get("folder", "msgfolderroot"))
        if call.req.method == "POST":
            body = call.req.json()
            name = body.get("displayName") if isinstance(body, dict) else None
            if not isinstance(name, str) or not name.strip():
                raise bad_request("A folder needs a non-empty 'displayName'.")
            row = self.svc.store.create_folder(call.mailbox.id, parent["id"], name.strip())
            return self.one(call, row, 201)
        rows = self.svc.store.child_folders(call.mailbox.id, parent["id"])
        items = [self.svc.render.folder(r) for r in rows]
        select = odata.parse_select(call.req.arg("$select"), "mailFolder")
        path = "mailFolders"
        if "folder" in call.params:
            path = f"mailFolders('{parent['id']}')/childFolders"
        context = collection_context(call.req, call.mailbox.id, path, select)
        return Response.json(
            query.page(
                call.req,
                items,
                lambda i, sel, _expand: select_plain(i, sel),
                type_name="mailFolder",
                context=context,
            )
        )

    def get_folder(self, call: Call) -> Response:
        call.allow(write=False)
        return self.one(call, self.row(call, call.params["folder"]))

    def one(self, call: Call, row: sqlite3.Row, status: int = 200) -> Response:
        """One folder with $select applied and its @odata.context."""
        odata.check_options(list(call.req.query))
        select = odata.parse_select(call.req.arg("$select"), "mailFolder")
        shaped = select_plain(self.svc.render.folder(row), select)
        context = entity_context(call.req, call.mailbox.id, "mailFolders")
        return Response.json(with_context(context, shaped), status)
