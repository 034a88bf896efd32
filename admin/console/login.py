"""The console's own login: it is an OpenID Connect relying party of this provider
(issue 6 "Access"). Authorization code flow with PKCE S256, state and nonce (OIDC Core
§3.1.2.1, RFC 7636 §4), ID token validation (OIDC Core §3.1.3.7), then the console's
own rules: an administrator role and a second factor in this login.

No Flask here: the views carry the HTTP exchange with the token endpoint and the cookies.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from admin.admins import AdminService
from admin.clients import CONSOLE_CLIENT_ID
from admin.models import AdminRole
from common.clock import Clock
from common.crypto import KeyedHasher, constant_time_equals, random_token
from common.errors import DomainError
from common.store import Store
from idp.clients import ClientCache, ClientService, RegisteredClient
from idp.discovery import ENDPOINTS
from idp.models import Account, Client
from idp.subjects import subject_for
from idp.tokens import TokenService

CONSOLE_CLIENT_NAME = "Yiwang administration console"
CALLBACK_PATH = "/admin/callback"
# Policy: the factors an administrator must add to the password (RFC 8176 §2): a TOTP /
# recovery code ("otp") or a hardware key ("hwk"). SMS is not enough for administrators
# (SIM swap, NIST SP 800-63B §5.1.3.3 "restricted" authenticator).
SECOND_FACTORS = frozenset({"otp", "hwk"})
# A started login must come back within this many seconds (typing a password and a code).
LOGIN_TTL = 600
# Clock skew tolerated on iat (seconds).
_LEEWAY = 60


class ConsoleLoginError(DomainError):
    """A console login was refused; ``code`` names why (shown translated on the page)."""

    code = "console_login_failed"
    public_message = "The console login failed."
    status_code = 400


class LoginStateError(ConsoleLoginError):
    """Unknown, expired, replayed or foreign ``state`` (RFC 6749 §10.12, CSRF on the callback)."""

    code = "bad_state"
    public_message = "The login request is unknown or was already used. Start again."


class TokenExchangeError(ConsoleLoginError):
    code = "token_exchange_failed"
    public_message = "The authorization code was not accepted."


class IdTokenInvalidError(ConsoleLoginError):
    code = "bad_id_token"
    public_message = "The ID token was not valid."


class NotAnAdministratorError(ConsoleLoginError):
    code = "no_role"
    public_message = "This account holds no administrator role."
    status_code = 403


class SecondFactorRequiredError(ConsoleLoginError):
    code = "no_second_factor"
    public_message = "Administrators must log in with a second factor."
    status_code = 403

    def __init__(self, detail: str = "", *, account_id: int | None = None) -> None:
        super().__init__(detail)
        self.account_id = account_id


@dataclass(frozen=True)
class PendingLogin:
    """What the console remembers between the authorization request and the callback."""

    state: str
    nonce: str
    verifier: str
    binding: str


@dataclass(frozen=True)
class AdminIdentity:
    """An administrator as established by a validated ID token."""

    account_id: int
    roles: frozenset[str]
    amr: tuple[str, ...]
    auth_time: int
    sid: str | None


def s256(verifier: str) -> str:
    # RFC 7636 §4.2: BASE64URL(SHA256(ASCII(code_verifier))).
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class ConsoleLoginService:
    """Registers the console as a client of this provider and runs its login.

    Policy: the console client (``yiwang-console``) is created or repaired by
    ``ensure_client`` at every ``GET /admin/login``: one cheap read when all is well, and a
    fresh installation, a changed issuer or a rotated index key heal themselves. Its secret
    is never stored anywhere: it is derived from the index key (HMAC), and only its keyed
    hash is in ``idp_clients``, like every other client's.
    """

    def __init__(
        self,
        session: Session,
        *,
        store: Store,
        clock: Clock,
        hasher: KeyedHasher,
        clients: ClientService,
        client_cache: ClientCache,
        tokens: TokenService,
        admins: AdminService,
        issuer: str,
    ) -> None:
        self._session = session
        self._store = store
        self._clock = clock
        self._hasher = hasher
        self._clients = clients
        self._client_cache = client_cache
        self._tokens = tokens
        self._admins = admins
        self._issuer = issuer

    @property
    def redirect_uri(self) -> str:
        return self._issuer + CALLBACK_PATH

    def client_secret(self) -> str:
        return self._hasher.digest("console-client-secret", self._issuer)

    # -- registration ---------------------------------------------------------------------

    def ensure_client(self) -> bool:
        """Make sure the console client exists with its fixed registration: confidential
        (client_secret_basic), authorization_code only, scope openid, one redirect URI,
        enabled. Returns True when it changed anything (the caller commits). Flushes."""
        row = self._clients.find(CONSOLE_CLIENT_ID)
        if row is None:
            row, _ = self._clients.create(
                name=CONSOLE_CLIENT_NAME,
                redirect_uris=[self.redirect_uri],
                grant_types=["authorization_code"],
                scopes=["openid"],
                token_endpoint_auth_method="client_secret_basic",  # noqa: S106 - a method name
            )
            row.client_id = CONSOLE_CLIENT_ID
            self._apply(row)
            self._session.flush()
            return True
        expected = {
            "redirect_uris": [self.redirect_uri],
            "grant_types": ["authorization_code"],
            "scopes": ["openid"],
            "token_endpoint_auth_method": "client_secret_basic",
            "enabled": True,
        }
        drift = any(getattr(row, k) != v for k, v in expected.items())
        secret_ok = bool(row.secret_hash) and self._hasher.verify(
            "client-secret", self.client_secret(), row.secret_hash or ""
        )
        if not drift and secret_ok:
            return False
        for k, v in expected.items():
            setattr(row, k, v)
        self._apply(row)
        self._session.flush()
        return True

    def _apply(self, row: Client) -> None:
        row.secret_hash = self._hasher.digest("client-secret", self.client_secret())
        row.post_logout_redirect_uris = []
        row.claim_policy = None
        row.updated_at = self._clock.now()
        self._client_cache.invalidate(CONSOLE_CLIENT_ID)

    # -- authorization request ------------------------------------------------------------

    def begin(self, binding: str, *, ui_locale: str | None = None) -> str:
        """Remember a new login for the browser holding ``binding`` and return the
        authorization request URL (OIDC Core §3.1.2.1)."""
        pending = PendingLogin(state=random_token(24), nonce=random_token(24), verifier=random_token(48),
                               binding=self._hasher.digest("console-login-binding", binding))
        self._store.set(f"console-login:{pending.state}", json.dumps(pending.__dict__).encode(), LOGIN_TTL)
        params = {
            "response_type": "code",
            "client_id": CONSOLE_CLIENT_ID,
            "redirect_uri": self.redirect_uri,
            "scope": "openid",
            "state": pending.state,
            "nonce": pending.nonce,
            # RFC 7636 §4.3; S256 only (RFC 9700 §2.1.1).
            "code_challenge": s256(pending.verifier),
            "code_challenge_method": "S256",
            # OIDC Core §3.1.2.1: always a fresh login for the console, never a reused SSO session.
            "prompt": "login",
        }
        if ui_locale:
            params["ui_locales"] = ui_locale
        return self._issuer + ENDPOINTS["authorization"] + "?" + urlencode(params)

    def take_pending(self, state: str | None, binding: str | None) -> PendingLogin:
        """Consume the login ``state`` names; only the browser that started it may finish
        it, and only once (a replayed callback finds nothing). Raises ``LoginStateError``."""
        if not state or len(state) > 64 or not binding or len(binding) > 64:
            raise LoginStateError("missing state or binding")
        raw = self._store.consume(f"console-login:{state}")
        if raw is None:
            raise LoginStateError("unknown, expired or replayed state")
        data = json.loads(raw)
        pending = PendingLogin(**data)
        if not constant_time_equals(pending.binding, self._hasher.digest("console-login-binding", binding)):
            raise LoginStateError("state started by another browser")
        return pending

    def token_request(self, code: str, pending: PendingLogin) -> tuple[dict[str, str], dict[str, str]]:
        """The form and headers of the token request (RFC 6749 §4.1.3, RFC 7636 §4.5,
        client_secret_basic per RFC 6749 §2.3.1)."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri,
                "code_verifier": pending.verifier}
        credentials = base64.b64encode(f"{CONSOLE_CLIENT_ID}:{self.client_secret()}".encode()).decode()
        return form, {"Authorization": f"Basic {credentials}"}

    # -- token response -------------------------------------------------------------------

    def identify(self, status: int, body: dict[str, Any], pending: PendingLogin) -> AdminIdentity:
        """Validate the token response and its ID token, then apply the console's rules.
        Raises ``TokenExchangeError``, ``IdTokenInvalidError``, ``NotAnAdministratorError``
        or ``SecondFactorRequiredError``."""
        if status != 200 or not isinstance(body.get("id_token"), str):
            raise TokenExchangeError(f"token endpoint answered {status} {body.get('error')}")
        claims = self._validated_claims(body["id_token"], pending)
        account = self._administrator(str(claims["sub"]))
        raw_amr = claims.get("amr")
        amr = [str(a) for a in raw_amr] if isinstance(raw_amr, list) else []
        if not SECOND_FACTORS & set(amr):
            raise SecondFactorRequiredError(f"amr {amr}", account_id=account.id)
        return AdminIdentity(
            account_id=account.id,
            roles=self._admins.roles_of(account.id),
            amr=tuple(amr),
            auth_time=int(claims.get("auth_time", 0)),
            sid=str(claims["sid"]) if claims.get("sid") else None,
        )

    def _validated_claims(self, id_token: str, pending: PendingLogin) -> dict[str, Any]:
        # OIDC Core §3.1.3.7 steps 2-3, 6: signed by one of our keys (kid resolved from the
        # key service, ES256/RS256 only, never "none"), iss exactly our issuer.
        # An ID token only (RFC 8725 §3.11): not an access or logout token signed by the same keys.
        claims = self._tokens.decode_id_token(id_token, verify_exp=True)
        if claims is None:
            raise IdTokenInvalidError("signature, iss or exp")
        # §3.1.3.7 step 3-5: aud contains us (and azp, when several audiences, is us).
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if CONSOLE_CLIENT_ID not in audiences or (len(audiences) > 1 and claims.get("azp") != CONSOLE_CLIENT_ID):
            raise IdTokenInvalidError("aud")
        # §3.1.3.7 step 10: iat not in the future.
        if int(claims.get("iat", 0)) > self._clock.timestamp() + _LEEWAY:
            raise IdTokenInvalidError("iat in the future")
        # §3.1.3.7 step 11: the nonce we sent (replay of an ID token from another login).
        if not constant_time_equals(str(claims.get("nonce", "")), pending.nonce):
            raise IdTokenInvalidError("nonce")
        if not isinstance(claims.get("sub"), str):
            raise IdTokenInvalidError("sub")
        return claims

    def _administrator(self, sub: str) -> Account:
        """The account behind a console ``sub``. The sub is pairwise (DESIGN.md §5), so it
        is recomputed for each administrator's account: there are few of them, and an
        account with no role simply matches nothing. Raises ``NotAnAdministratorError``."""
        client = self._console_client()
        rows = self._session.execute(
            select(Account).where(Account.id.in_(select(AdminRole.account_id)), Account.status == "active")
        ).scalars()
        for account in rows:
            mine = subject_for(self._hasher, account.subject_seed, client.subject_type, client.sector_identifier)
            if constant_time_equals(mine, sub):
                return account
        raise NotAnAdministratorError("no administrator account has this sub")

    def _console_client(self) -> RegisteredClient:
        snapshot = self._clients.snapshot(CONSOLE_CLIENT_ID)
        if snapshot is None:
            raise TokenExchangeError("console client missing")
        return snapshot
