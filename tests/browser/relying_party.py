"""A tiny web relying party for the browser tests, built on pyoidc (``oic``), an
independent, OpenID-certified RP library: it fetches discovery and JWKS, builds the
authorization request (PKCE S256, state, nonce), exchanges the code with
client_secret_basic and validates the ID token itself. None of our code is involved."""

from __future__ import annotations

import html
import queue
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from oic import rndstr
from oic.oauth2.message import ErrorResponse
from oic.oic import Client
from oic.oic.message import (
    AccessTokenResponse,
    AuthorizationResponse,
    IdToken,
    OpenIDSchema,
    RegistrationResponse,
    verify_id_token,
)
from oic.utils.authn.client import CLIENT_AUTHN_METHOD

WAIT = 20.0


@dataclass
class PendingLogin:
    state: str
    nonce: str
    code_verifier: str
    request: Any  # oic AuthorizationRequest


@dataclass
class Login:
    """What the RP learnt from one authorization response, after the library's checks."""

    method: str
    params: dict[str, str]
    id_token: IdToken | None = None
    id_token_jwt: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None
    userinfo: dict[str, Any] | None = None
    error: str | None = None
    failure: BaseException | None = None


@dataclass
class RelyingParty:
    """One registered client: the pyoidc ``Client`` plus an HTTP server on a loopback port
    serving ``/login`` (starts a flow), ``/callback`` (GET and POST, completes it) and
    ``/logged-out`` (post-logout landing)."""

    issuer: str
    client: Client = field(default_factory=Client)
    port: int = 0
    pending: dict[str, PendingLogin] = field(default_factory=dict)
    logins: queue.Queue[Login] = field(default_factory=queue.Queue)
    logouts: queue.Queue[dict[str, str]] = field(default_factory=queue.Queue)
    server: ThreadingHTTPServer | None = None
    serving: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def redirect_uri(self) -> str:
        return self.base_url + "/callback"

    @property
    def post_logout_redirect_uri(self) -> str:
        return self.base_url + "/logged-out"

    def login_url(self, **params: str) -> str:
        """The RP page a user visits to log in; extra authorization parameters go along."""
        return self.base_url + "/login" + ("?" + urlencode(params) if params else "")

    # -- the library's RP logic -------------------------------------------------------

    def begin(self, extra: dict[str, str]) -> str:
        """Build the authorization request URL with pyoidc: PKCE S256 (RFC 7636 §4.2),
        a fresh state and nonce (OIDC Core §3.1.2.1)."""
        state, nonce = rndstr(32), rndstr(32)
        challenge, verifier = self.client.add_code_challenge()
        args = {
            "response_type": "code",
            "scope": "openid profile",
            "redirect_uri": self.redirect_uri,
            "state": state,
            "nonce": nonce,
            **challenge,
            **extra,
        }
        request = self.client.construct_AuthorizationRequest(request_args=args)
        with self.lock:
            self.pending[state] = PendingLogin(state, nonce, verifier, request)
            self.client.state2nonce[state] = nonce
        return str(request.request(self.client.authorization_endpoint))

    def complete(self, method: str, raw: str) -> Login:
        """Parse the authorization response and, for a code, exchange it and validate the
        ID token; errors are recorded in the result for the test to report."""
        params = dict(parse_qsl(raw, keep_blank_values=True))
        login = Login(method=method, params=params)
        try:
            # pyoidc checks `iss` against the discovered issuer when present (RFC 9207 §2.4).
            response = self.client.parse_response(AuthorizationResponse, info=raw, sformat="urlencoded")
            if isinstance(response, ErrorResponse):
                login.error = str(response["error"])
                return login
            with self.lock:
                pending = self.pending.pop(str(response["state"]))  # unknown state → KeyError
            tokens = self.client.do_access_token_request(
                state=pending.state,
                request_args={
                    "code": response["code"],
                    "redirect_uri": self.redirect_uri,
                    "code_verifier": pending.code_verifier,
                },
                authn_method="client_secret_basic",
            )
            if not isinstance(tokens, AccessTokenResponse):
                raise AssertionError(f"token endpoint error: {tokens.to_dict()}")
            id_token = tokens["id_token"]  # signature (JWKS), iss, aud, exp, iat checked
            # OIDC Core §3.1.3.7: iss, aud, exp and the nonce sent in the request.
            self.client.verify_id_token(id_token, pending.request)
            # OIDC Core §3.1.3.8: at_hash binds the access token to the ID token.
            verify_id_token(
                {"id_token": tokens["id_token_jwt"], "access_token": tokens["access_token"]},
                check_hash=True,
                keyjar=self.client.keyjar,
                iss=self.issuer,
                client_id=self.client.client_id,
            )
            if "at_hash" not in id_token:
                raise AssertionError("ID token without at_hash")
            userinfo = self.client.do_user_info_request(state=pending.state)
            if not isinstance(userinfo, OpenIDSchema):
                raise AssertionError(f"userinfo error: {userinfo.to_dict()}")
            login.id_token = id_token
            login.id_token_jwt = str(tokens["id_token_jwt"])
            login.access_token = str(tokens["access_token"])
            login.refresh_token = tokens.get("refresh_token")
            login.userinfo = userinfo.to_dict()
        except Exception as exc:  # noqa: BLE001 - reported to the test thread
            login.failure = exc
        return login

    def next_login(self) -> Login:
        login = self.logins.get(timeout=WAIT)
        if login.failure is not None:
            raise AssertionError(f"relying party rejected the response: {login.failure!r}") from login.failure
        return login

    def next_logout(self) -> dict[str, str]:
        return self.logouts.get(timeout=WAIT)

    # -- HTTP -------------------------------------------------------------------------

    def bind(self) -> int:
        """Listen on a free loopback port first, so the registered URIs are ours."""
        rp = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _page(self, status: int, title: str, location: str | None = None) -> None:
                body = f"<!doctype html><title>RP</title><h1 id='rp'>{html.escape(title)}</h1>".encode()
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _route(self, method: str, raw: str) -> None:
                path = urlsplit(self.path).path
                if path == "/login" and method == "GET":
                    self._page(302, "redirecting", rp.begin(dict(parse_qsl(raw))))
                elif path == "/callback":
                    login = rp.complete(method, raw)
                    rp.logins.put(login)
                    if login.failure is not None:
                        self._page(500, "rp-failed")
                    elif login.error is not None:
                        self._page(200, f"rp-error:{login.error}")
                    else:
                        self._page(200, f"rp-signed-in:{login.id_token['sub'] if login.id_token else ''}")
                elif path == "/logged-out" and method == "GET":
                    rp.logouts.put(dict(parse_qsl(raw, keep_blank_values=True)))
                    self._page(200, "rp-logged-out")
                else:
                    self._page(404, "not found")

            def do_GET(self) -> None:
                self._route("GET", urlsplit(self.path).query)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                ctype = self.headers.get("Content-Type", "")
                if not ctype.startswith("application/x-www-form-urlencoded"):
                    self._page(415, "form expected")
                    return
                self._route("POST", body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        return self.port

    def serve(self) -> None:
        assert self.server is not None
        threading.Thread(target=self.server.serve_forever, name=f"rp-{self.port}", daemon=True).start()
        self.serving = True

    def stop(self) -> None:
        if self.server is not None:
            if self.serving:
                self.server.shutdown()
            self.server.server_close()


def make_relying_party(idp: Any, name: str, scopes: tuple[str, ...] = ("openid", "profile")) -> RelyingParty:
    """Register a confidential client for a fresh loopback RP through the operator CLI and
    configure pyoidc from the IdP's discovery document; ``scopes`` are the ones it may ask for."""
    rp = RelyingParty(issuer=idp.issuer)
    base = f"http://127.0.0.1:{rp.bind()}"
    created = idp.cli(
        "clients", "create",
        "--name", name,
        "--redirect-uri", base + "/callback",
        "--post-logout-redirect-uri", base + "/logged-out",
        *[arg for scope in scopes for arg in ("--scope", scope)],
        "--token-endpoint-auth-method", "client_secret_basic",
    )
    rp.client = client = Client(client_id=created["client_id"], client_authn_method=CLIENT_AUTHN_METHOD)
    # OIDC Discovery §4.3: pyoidc refuses a document whose issuer differs from the URL.
    client.provider_config(idp.issuer)
    client.store_registration_info(
        RegistrationResponse(
            client_id=created["client_id"],
            client_secret=created["client_secret"],
            redirect_uris=[base + "/callback"],
            post_logout_redirect_uris=[base + "/logged-out"],
            id_token_signed_response_alg="ES256",
            token_endpoint_auth_method="client_secret_basic",
        )
    )
    rp.serve()
    return rp
