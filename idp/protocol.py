"""The protocol facts several layers need, declared once (issue 11): the grant types,
client authentication methods and scopes this server supports, and the PKCE value
syntax. The server, discovery, client registration, the admin API schema, the console
and the CLI all read them from here. Pure: no framework imports.
"""

from __future__ import annotations

import re

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

# RFC 7636 §4.1 (code_verifier) and §4.2 (an S256 code_challenge is base64url of 32 octets,
# 43 characters, within the same syntax): unreserved characters, 43-128 of them.
PKCE_VALUE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
PKCE_METHODS = ("S256",)
