"""Apache httpd + mod_auth_openidc as an independent relying party: one httpd process of
our own (own config, pid file, logs, runtime dir) serving several portals on loopback
ports, each protecting /protected/ with its own OIDC client. The system Apache
configuration under /etc/apache2 is never read or touched."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

MODULES = Path("/usr/lib/apache2/modules")
OIDC_MODULE = MODULES / "mod_auth_openidc.so"

# What the protected handler echoes: who mod_auth_openidc says is logged in.
WHOAMI_VARS = (
    "REMOTE_USER", "OIDC_CLAIM_iss", "OIDC_CLAIM_sub", "OIDC_CLAIM_sid", "OIDC_CLAIM_aud", "OIDC_CLAIM_name",
)

WHOAMI_CGI = "#!/bin/sh\n" + "printf 'Content-Type: text/plain; charset=utf-8\\r\\nCache-Control: no-store\\r\\n\\r\\n'\n" + "".join(
    f"printf '{name}=%s\\n' \"${name}\"\n" for name in WHOAMI_VARS
)


def apache_binary() -> str | None:
    found = shutil.which("apache2") or shutil.which("httpd")
    if found:
        return found
    return "/usr/sbin/apache2" if os.access("/usr/sbin/apache2", os.X_OK) else None


@dataclass
class Portal:
    name: str
    port: int
    client_id: str
    client_secret: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def protected(self) -> str:
        return self.base + "/protected/"

    @property
    def redirect_uri(self) -> str:
        return self.base + "/protected/redirect_uri"

    @property
    def post_logout_uri(self) -> str:
        return self.base + "/loggedout"

    @property
    def backchannel_uri(self) -> str:
        return self.redirect_uri + "?logout=backchannel"


def _vhost(portal: Portal, metadata_url: str, passphrase: str, root: Path) -> str:
    # The session cookie is named per portal: cookies are not isolated by port
    # (RFC 6265 §8.5), so two portals on 127.0.0.1 would otherwise overwrite each other's.
    return f"""
<VirtualHost 127.0.0.1:{portal.port}>
    ServerName 127.0.0.1:{portal.port}
    OIDCProviderMetadataURL {metadata_url}
    OIDCClientID {portal.client_id}
    OIDCClientSecret {portal.client_secret}
    OIDCRedirectURI {portal.redirect_uri}
    OIDCCryptoPassphrase {passphrase}
    OIDCScope "openid profile"
    OIDCPKCEMethod S256
    OIDCSessionType server-cache
    OIDCCacheType shm
    OIDCCookie portal_{portal.name.lower()}_session
    ScriptAliasMatch ^/(protected/|loggedout)$ "{root}/whoami.cgi"
    <Location /protected/>
        AuthType openid-connect
        Require valid-user
    </Location>
</VirtualHost>
"""


@dataclass
class ApacheRp:
    """A running httpd with one virtual host per portal."""

    root: Path
    portals: dict[str, Portal]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def error_log(self) -> Path:
        return self.root / "error.log"

    def log_tail(self, chars: int = 6000) -> str:
        """Every warning/error mod_auth_openidc logged (why it rejected something),
        then the end of the debug log."""
        try:
            text = self.error_log.read_text(errors="replace")
        except OSError:
            return "(no Apache error log)"
        notable = [
            line for line in text.splitlines() if ":debug]" not in line and 'SHOULD be "https"' not in line
        ]
        return "\n".join(notable[-60:]) + f"\n--- last {chars} characters ---\n" + text[-chars:]

    def write_config(self, metadata_url: str) -> Path:
        passphrase = os.urandom(24).hex()
        lines = [
            f'ServerRoot "{self.root}"',
            f'DefaultRuntimeDir "{self.root}/run"',
            f'PidFile "{self.root}/httpd.pid"',
            f'ErrorLog "{self.error_log}"',
            "LogLevel warn auth_openidc:debug",
            'LogFormat "%h %l %u %t \\"%r\\" %>s %b" common',
            f'CustomLog "{self.root}/access.log" common',
            "ServerName 127.0.0.1",
            f'DocumentRoot "{self.root}/htdocs"',
            "StartServers 2",
            "MinSpareServers 2",
            "MaxSpareServers 4",
            "MaxRequestWorkers 16",
            "Timeout 30",
            "KeepAlive Off",
        ]
        for module in ("mpm_prefork", "authz_core", "authn_core", "authz_user", "alias", "cgi"):
            lines.append(f'LoadModule {module}_module "{MODULES}/mod_{module}.so"')
        lines.append(f'LoadModule auth_openidc_module "{OIDC_MODULE}"')
        if os.geteuid() == 0:
            # Started as root, httpd drops to this account for its workers: they must be
            # able to read and execute the files below (hence a world-readable root).
            account = "www-data" if _has_user("www-data") else "nobody"
            group = pwd.getpwnam(account).pw_gid
            lines += [f"User {account}", f"Group #{group}"]
        for portal in self.portals.values():
            lines.append(f"Listen 127.0.0.1:{portal.port}")
        lines += [
            f'<Directory "{self.root}">',
            "    Require all granted",
            "</Directory>",
        ]
        for portal in self.portals.values():
            lines.append(_vhost(portal, metadata_url, passphrase, self.root))
        conf = self.root / "httpd.conf"
        conf.touch(mode=0o600)  # holds client secrets; only the (root) parent reads it
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start(self, metadata_url: str) -> None:
        binary = apache_binary()
        assert binary, "apache2 is not installed (scripts/bootstrap --dev installs it)"
        conf = self.write_config(metadata_url)
        check = subprocess.run([binary, "-t", "-f", str(conf)], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, f"Apache rejects the generated config:\n{check.stderr}\n{conf.read_text()}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("APACHE_")}
        with (self.root / "stdout.log").open("wb") as out:
            self.proc = subprocess.Popen(
                [binary, "-f", str(conf), "-DFOREGROUND"],
                env=env, stdout=out, stderr=subprocess.STDOUT,
                # prefork signals its whole process group on shutdown: keep pytest out of it.
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        pending = dict(self.portals)
        while pending and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Apache exited ({self.proc.returncode}):\n{self.log_tail()}")
            for name, portal in list(pending.items()):
                try:
                    requests.get(portal.base + "/loggedout", timeout=1)
                    del pending[name]
                except requests.RequestException:
                    pass
            time.sleep(0.1)
        if pending:
            raise RuntimeError(f"Apache did not listen on {sorted(pending)}:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def make_root() -> Path:
    """A private working directory the unprivileged workers can traverse. pytest's
    tmp_path lives under a 0700 directory, so it cannot be used as the server root."""
    root = Path(tempfile.mkdtemp(prefix="yiwang-apache-"))
    root.chmod(0o755)
    (root / "run").mkdir()
    (root / "htdocs").mkdir()
    cgi = root / "whoami.cgi"
    cgi.write_text(WHOAMI_CGI)
    cgi.chmod(0o755)
    return root
