"""Blueprint: GET /api/health and GET /api/openapi.json (both anonymous, nothing secret)."""

import azure.functions as func

from shared.api.http import Request, Response, json_response, run_blocking
from shared.api.openapi import VERSION, openapi_document
from shared.models import Health

bp = func.Blueprint()


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def health(req: Request) -> Response:
    """Liveness only: anonymous callers learn nothing about connections or dependencies."""
    return json_response(200, Health(status="ok", version=VERSION))


@bp.function_name("openapi")
@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def openapi(req: Request) -> Response:
    """The OpenAPI 3.1 document generated from the request models."""
    return json_response(200, await run_blocking(openapi_document))
