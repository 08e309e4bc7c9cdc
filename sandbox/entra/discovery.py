"""Discovery: OpenID configuration, the signing keys (JWKS) and MSAL's user-realm look-up."""

from __future__ import annotations

from sandbox.directory import Directory
from sandbox.entra.errors import EntraError, entra_error_response
from sandbox.entra.tenancy import tenant_for
from sandbox.tokens import Tokens
from sandbox.web import Request, Response


class Discovery:
    """The metadata endpoints of each tenant (id, domain, common or organizations)."""

    def __init__(self, directory: Directory, tokens: Tokens) -> None:
        self.directory = directory
        self.tokens = tokens

    def openid_configuration(self, request: Request) -> Response:
        segment = request.params["tenant"]
        try:
            tenant = tenant_for(self.directory, segment)
        except EntraError as exc:
            return entra_error_response(exc, request)
        base = f"{request.base_url}/{segment}"
        issuer = self.tokens.issuer(tenant.id if tenant else "{tenantid}")
        return Response.json(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": issuer,
                "request_uri_parameter_supported": False,
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "claims_supported": [
                    "sub",
                    "iss",
                    "aud",
                    "exp",
                    "iat",
                    "nonce",
                    "preferred_username",
                    "name",
                    "tid",
                    "ver",
                    "oid",
                ],
                "tenant_region_scope": None,
                "cloud_instance_name": "sandbox.local",
                "cloud_graph_host_name": "graph.windows.net",
                "msgraph_host": "graph.microsoft.com",
            }
        )

    def keys(self, request: Request) -> Response:
        try:
            tenant_for(self.directory, request.params["tenant"])
        except EntraError as exc:
            return entra_error_response(exc, request)
        return Response.json(self.tokens.jwks())

    @staticmethod
    def user_realm(request: Request) -> Response:
        """MSAL's user realm discovery before a password grant: every sandbox user is managed."""
        domain = request.params["user"].rpartition("@")[2]
        return Response.json(
            {
                "ver": "1.0",
                "account_type": "Managed",
                "domain_name": domain,
                "cloud_instance_name": "sandbox.local",
                "cloud_audience_urn": "urn:federation:sandbox",
            }
        )
