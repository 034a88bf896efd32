"""The protocol facts several layers need, declared once (issue 11): the grant types,
client authentication methods and scopes this server supports, and the PKCE value
syntax. The server, discovery, client registration, the admin API schema, the console
and the CLI all read them from here. Pure: no framework imports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# RFC 6749 §4.1, §6, §4.4.
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")

# RFC 6749 §2.3.1, RFC 7523 §2.2 (OIDC Core §9), RFC 7591 §2 "none" for public clients.
SECRET_METHODS = ("client_secret_basic", "client_secret_post")
CONFIDENTIAL_METHODS = (*SECRET_METHODS, "private_key_jwt")
PUBLIC_METHOD = "none"
AUTH_METHODS = (*CONFIDENTIAL_METHODS, PUBLIC_METHOD)

# Scopes a client may be registered for. ``admin`` is only for first-party clients
# (issue 17).
ADMIN_SCOPE = "admin"
SUPPORTED_SCOPES = ("openid", "profile", "phone", "offline_access", "legal_person", "realname", "id_number",
                    ADMIN_SCOPE)

@dataclass(frozen=True)
class Features:
    """Optional protocol features, each switching its route, its discovery metadata and
    its server registration together (in the way node-oidc-provider's ``features``
    do). Off means the endpoint answers 404 and discovery does not mention it."""

    introspection: bool = True  # RFC 7662
    revocation: bool = True  # RFC 7009
    client_credentials: bool = True  # RFC 6749 §4.4
    frontchannel_logout: bool = True  # OIDC Front-Channel Logout 1.0
    backchannel_logout: bool = True  # OIDC Back-Channel Logout 1.0

    def grant_types(self) -> tuple[str, ...]:
        return tuple(g for g in GRANT_TYPES if g != "client_credentials" or self.client_credentials)


# RFC 7636 §4.1 (code_verifier) and §4.2 (an S256 code_challenge is base64url of 32 octets,
# 43 characters, within the same syntax): unreserved characters, 43-128 of them.
PKCE_VALUE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
PKCE_METHODS = ("S256",)
