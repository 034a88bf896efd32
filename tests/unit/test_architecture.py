"""The dependency direction config → admin → idp → {realname, certificates} → common
(DESIGN.md §2), and pure rule modules free of Flask, sessions and Redis (STYLE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("common", "realname", "certificates", "idp", "admin", "config")
# What each package may import among ours.
ALLOWED = {
    "common": {"common"},
    "realname": {"realname", "common"},
    "certificates": {"certificates", "common"},
    "idp": {"idp", "realname", "certificates", "common"},
    "admin": {"admin", "idp", "realname", "certificates", "common"},
    "config": set(PACKAGES),
}
PURE_MODULES = ["idp/assurance.py", "idp/claims.py", "idp/subjects.py", "idp/discovery.py", "idp/i18n.py",
                "idp/authorize.py", "idp/catalogue.py", "realname/idnumbers.py", "realname/names.py",
                "realname/levels.py", "certificates/uscc.py", "certificates/der.py", "certificates/mapping.py",
                "certificates/proof.py", "common/http.py", "idp/release.py", "idp/protocol.py",
                "idp/oauth_errors.py"]
IMPURE = {"flask", "werkzeug", "sqlalchemy", "flask_sqlalchemy", "redis"}
# STYLE.md "Where Flask stops".
FLASK_ALLOWED = ("idp/views/", "idp/server.py", "config/", "admin/", "common/db.py")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_dependency_direction(package: str) -> None:
    offenders = []
    for path in _files(package):
        ours = _imports(path) & set(PACKAGES)
        bad = ours - ALLOWED[package]
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offenders, offenders


def _runtime_imports(path: Path) -> tuple[set[str], set[Path]]:
    """(top-level third-party names, project module files) imported at run time: what
    ``if TYPE_CHECKING:`` blocks import does not count."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    names: set[str] = set()
    files: set[Path] = set()
    package = path.parent
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package
                for _ in range(node.level - 1):
                    base = base.parent
                rel = (node.module or "").replace(".", "/")
                targets = [base / rel] if node.module else [base / a.name for a in node.names]
                for target in targets:
                    for candidate in (target.with_suffix(".py"), target / "__init__.py"):
                        if candidate.is_file():
                            files.add(candidate)
                continue
            modules = [node.module or ""]
        for module in modules:
            top = module.split(".")[0]
            if top in PACKAGES:
                target = ROOT / module.replace(".", "/")
                for candidate in (target.with_suffix(".py"), target / "__init__.py"):
                    if candidate.is_file():
                        files.add(candidate)
            else:
                names.add(top)
    return names, files


def _transitive_imports(path: Path) -> set[str]:
    seen: set[Path] = set()
    todo = [path]
    names: set[str] = set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        found, files = _runtime_imports(current)
        names |= found
        todo.extend(files - seen)
    return names


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_modules_have_no_framework_imports(module: str) -> None:
    # Issue 11: followed through our own modules, so a pure module cannot pull a framework
    # in through another of ours (authorize.py once imported .clients, and SQLAlchemy).
    assert not (_transitive_imports(ROOT / module) & IMPURE), sorted(_transitive_imports(ROOT / module) & IMPURE)


def test_flask_only_where_allowed() -> None:
    offenders = []
    for package in PACKAGES:
        for path in _files(package):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith(FLASK_ALLOWED):
                continue
            if _imports(path) & {"flask", "werkzeug"}:
                offenders.append(rel)
    assert not offenders, offenders


# Modules that open network connections by themselves.
NETWORK_CLIENTS = {"socket", "ssl", "http.client", "urllib.request", "urllib3", "requests", "httpx", "aiohttp"}


def _module_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


@pytest.mark.parametrize("package", ["idp", "certificates", "admin"])
def test_outbound_requests_only_through_the_guarded_client(package: str) -> None:
    # Issue 17: URLs from registrations and CA profiles (CRLs, OCSP, sector identifier
    # documents, back-channel logout) are reached only through common/http.py, whose
    # address guard, pinning, size cap and no-redirect rule apply to every such request.
    offenders = [f"{path.relative_to(ROOT)} imports {sorted(_module_imports(path) & NETWORK_CLIENTS)}"
                 for path in _files(package) if _module_imports(path) & NETWORK_CLIENTS]
    assert not offenders, offenders
