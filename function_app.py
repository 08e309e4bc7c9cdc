"""The Azure Functions app: creates FunctionApp and registers the blueprints; nothing else."""

import azure.functions as func

# HTTP streams: importing the web extension while the app is indexed is what switches the Python
# worker to FastAPI's Request/Response for every HTTP function (docs/architecture.md, "The HTTP
# edge"). The blueprints import it too (shared.api.http); named here so the switch is visible.
import azurefunctions.extensions.http.fastapi  # noqa: F401

import api_meta
import auth_routes
import create_draft
import export_mail
import forward_mail
import move_mail
import operations_api
import reply_mail
import send_mail
import signin_health

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

# Each blueprint module exposes its Blueprint as `bp`; registering it under that same name lets
# azure-functions-doctor see that every blueprint is registered (docs/deploy.md).
for bp in (
    send_mail.bp,
    move_mail.bp,
    create_draft.bp,
    reply_mail.bp,
    forward_mail.bp,
    export_mail.bp,
    api_meta.bp,
    auth_routes.bp,
    operations_api.bp,
    signin_health.bp,
):
    app.register_functions(bp)
