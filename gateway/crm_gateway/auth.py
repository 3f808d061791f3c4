"""Staff authentication: passwords, access tokens, the first admin, and the request hook.

Tokens are HS256 JWTs with ``sub`` (staff id), ``roles``, ``ver`` (the staff's token_version)
and ``exp``. Each request checks the staff member against the staff directory, so
deactivation, a password change (both bump token_version) and role changes take effect on the
next request, not at expiry.

The directory keeps each staff member's snapshot for ``STAFF_CACHE_SECONDS`` (reading the row
on every request was a third of the gateway's CPU). A change made through this process forgets
the snapshot at once; with several gunicorn workers, the others see it within that time.
"""
import logging
import os
import secrets
import sys
import threading
import time
from dataclasses import dataclass

import jwt
from flask import current_app, g, request
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from crm_kit.audit import SYSTEM
from crm_gateway import permissions
from crm_gateway.audit_trail import record_staff
from crm_gateway.errors import Forbidden, Unauthorized
from crm_gateway.models import Staff, new_id

log = logging.getLogger(__name__)

ALGORITHM = "HS256"
MIN_PASSWORD_LENGTH = 10
STAFF_CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class Caller:
    """The authenticated staff member of the current request (a snapshot, not a DB row)."""

    id: str
    username: str
    display_name: str
    roles: tuple
    district: str | None
    supervisor_id: str | None
    active: bool = True
    token_version: int = 1

    @classmethod
    def of(cls, staff):
        return cls(staff.id, staff.username, staff.display_name, tuple(staff.roles or ()),
                   staff.district, staff.supervisor_id, staff.active, staff.token_version)

    def has_role(self, *roles):
        return bool(set(self.roles) & set(roles))

    @property
    def actor(self):
        """Who asked, as the services record it (rpc-contracts.md)."""
        return {"id": self.id, "roles": list(self.roles)}


def current_caller():
    return g.get("caller")


class StaffDirectory:
    """Snapshots of staff members by id, read in short sessions and kept a few seconds."""

    def __init__(self, sessions, ttl=STAFF_CACHE_SECONDS):
        self._sessions = sessions
        self._ttl = ttl
        self._lock = threading.Lock()
        self._entries = {}

    def get(self, staff_id):
        """The staff member's ``Caller`` snapshot, or None if there is no such id."""
        now = time.monotonic()
        entry = self._entries.get(staff_id)
        if entry is not None and now - entry[0] < self._ttl:
            return entry[1]
        with self._sessions() as session:
            staff = session.get(Staff, staff_id)
            snapshot = Caller.of(staff) if staff is not None else None
        with self._lock:
            self._entries[staff_id] = (now, snapshot)
        return snapshot

    def forget(self, staff_id):
        with self._lock:
            self._entries.pop(staff_id, None)


def staff_directory():
    return current_app.extensions["crm_gateway"]["staff"]


# ---------------------------------------------------------------- passwords

def hash_password(password):
    return generate_password_hash(password, method="scrypt")


_dummy_hash = None


def check_password(staff, password):
    """Constant work whether or not the username exists, so timing does not reveal usernames."""
    global _dummy_hash
    if staff is None:
        if _dummy_hash is None:
            _dummy_hash = hash_password(secrets.token_urlsafe(16))
        check_password_hash(_dummy_hash, password)
        return False
    return check_password_hash(staff.password_hash, password)


# ---------------------------------------------------------------- tokens

def issue_token(staff):
    settings = current_app.config["CRM_SETTINGS"]
    now = int(time.time())
    claims = {"sub": staff.id, "roles": list(staff.roles), "ver": staff.token_version,
              "iat": now, "exp": now + settings.token_ttl}
    return jwt.encode(claims, settings.jwt_secret, algorithm=ALGORITHM), settings.token_ttl


def _bearer_token():
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("A bearer token is required.")
    return token.strip()


def _verified_claims(token):
    """``(claims, None)`` of a validly signed, unexpired token with a subject, or
    ``(None, why not)``; decoded once per request (the rate limits and the permission check
    both need it, and the HMAC check is a good part of a request's CPU)."""
    decoded = g.setdefault("crm_token_claims", {})
    if token not in decoded:
        settings = current_app.config["CRM_SETTINGS"]
        try:
            decoded[token] = (jwt.decode(token, settings.jwt_secret, algorithms=[ALGORITHM],
                                         options={"require": ["sub", "exp"]}), None)
        except jwt.ExpiredSignatureError:
            decoded[token] = (None, "The token has expired.")
        except jwt.InvalidTokenError:
            decoded[token] = (None, "The token is not valid.")
    return decoded[token]


def token_subject():
    """The staff id of the request's bearer token when it is validly signed and unexpired, else
    None; no directory lookup (what the rate limits key on, before the permission check)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    claims, _ = _verified_claims(token.strip())
    if claims is None:
        return None
    subject = claims["sub"]
    return subject if isinstance(subject, str) and subject else None


def _caller_from_token(token):
    claims, problem = _verified_claims(token)
    if problem:
        raise Unauthorized(problem)
    if "ver" not in claims:  # every token this gateway signs carries the staff's version
        raise Unauthorized("The token is not valid.")
    caller = staff_directory().get(claims["sub"])
    if caller is None or not caller.active or caller.token_version != claims["ver"]:
        raise Unauthorized("The token is no longer valid.")
    return caller


def authorize_request():
    """``before_request``: the permission table decides; a route without an entry is refused."""
    rule = request.url_rule
    if rule is None:
        return  # no such route: Flask answers 404/405 next
    method = "GET" if request.method == "HEAD" else request.method
    if method == "OPTIONS":
        return
    allowed = permissions.allowed_roles(method, rule.rule)
    if allowed is None:
        log.error("route %s %s has no entry in the permission table", method, rule.rule)
        raise Forbidden("This route is not open to anyone yet.")
    if allowed == permissions.PUBLIC:
        return
    caller = _caller_from_token(_bearer_token())
    g.caller = caller
    if not caller.has_role(*allowed):
        raise Forbidden("Your roles do not allow this.",
                        {"required_roles": sorted(allowed)})


# ---------------------------------------------------------------- the first admin

class WeakAdminPassword(ValueError):
    """A configured first-admin password too weak to ship: the gateway refuses to start."""


def check_configured_password(username, password):
    if len(password) < MIN_PASSWORD_LENGTH or password.lower() == username.lower():
        raise WeakAdminPassword(
            f"crm-gateway: CRM_ADMIN_PASSWORD is too weak (at least {MIN_PASSWORD_LENGTH} "
            "characters, not the username); set a strong one or unset it to have one generated.")


def ensure_first_admin(session_factory, settings):
    """Create the first admin when no admin exists; never touch an existing one.

    Without CRM_ADMIN_PASSWORD a password is generated, printed once to stderr and kept (0600)
    in ``<data dir>/admin-credentials.txt``.
    """
    with session_factory() as session:
        if any(permissions.ADMIN in (roles or ()) for roles in session.scalars(select(Staff.roles))):
            return None
        if session.scalar(select(Staff).where(Staff.username == settings.admin_username)):
            log.warning("no admin exists, but the username %r is taken by a non-admin; "
                        "not creating one", settings.admin_username)
            return None
        password = settings.admin_password
        generated = not password
        if not generated:
            check_configured_password(settings.admin_username, password)
        if generated:
            password = secrets.token_urlsafe(15)
        admin = Staff(id=new_id(), username=settings.admin_username,
                      password_hash=hash_password(password), display_name="Administrator",
                      roles=[permissions.ADMIN], active=True, token_version=1)
        session.add(admin)
        record_staff(session, SYSTEM, "staff.created", admin, None)
        session.commit()
    if generated:
        path = settings.data_dir / "admin-credentials.txt"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"username: {settings.admin_username}\npassword: {password}\n")
        print(f"crm-gateway: created the first admin {settings.admin_username!r} with password "
              f"{password} (also in {path}); change it after signing in.", file=sys.stderr)
    else:
        log.info("created the first admin %r from the configuration", settings.admin_username)
    return admin.id
