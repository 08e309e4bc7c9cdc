"""The Azure Functions app: creates FunctionApp and registers the blueprints; nothing else."""

import azure.functions as func

from api_meta import bp as api_meta_bp
from auth_routes import bp as auth_routes_bp
from create_draft import bp as create_draft_bp
from move_mail import bp as move_mail_bp
from operations_api import bp as operations_api_bp
from send_mail import bp as send_mail_bp

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

for blueprint in (
    send_mail_bp,
    move_mail_bp,
    create_draft_bp,
    api_meta_bp,
    auth_routes_bp,
    operations_api_bp,
):
    app.register_functions(blueprint)
