"""Lockout after repeated failed sign-ins (OWASP API2: broken authentication).

After ``login_max_failures`` wrong passwords for one username within ``login_lockout_seconds``,
that username is locked for ``login_lockout_seconds``: every attempt, even with the right
password, gets 429 with ``Retry-After`` and no password check. A successful sign-in clears the
count; so does an admin setting a new password (``PATCH /staff/{id}``), which is how a locked-out
person gets back in before the time is up.

Unknown usernames are counted exactly like known ones, so the answers do not reveal which
usernames exist. The per-address rate limit on ``POST /auth/token`` (``rate_limits.py``) bounds
how fast anyone can guess across usernames; this bounds guessing at one account from many
addresses. Counts live in the gateway's database, so every gunicorn worker and every gateway
replica shares them.
"""
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from crm_kit.errors import CrmError
from crm_gateway.models import LoginFailure, utc_now


class TooManyFailures(CrmError):
    http_status = 429
    code = "too_many_failures"


def _key(username):
    return username.lower()[:64]


def _retry_after(locked_until, now):
    return max(1, int((locked_until - now).total_seconds() + 0.999))


def check_not_locked(session, username, now=None):
    """Raise ``TooManyFailures`` while ``username`` is locked out."""
    now = now or utc_now()
    entry = session.get(LoginFailure, _key(username))
    if entry is not None and entry.locked_until is not None and entry.locked_until > now:
        raise locked_error(entry.locked_until, now)


def locked_error(locked_until, now):
    seconds = _retry_after(locked_until, now)
    error = TooManyFailures(
        f"Too many failed sign-ins for this username; try again in {seconds} seconds "
        "or ask an admin to set a new password.", {"retry_after": seconds})
    error.headers = {"Retry-After": str(seconds)}
    return error


def record_failure(sessions, username, max_failures, window_seconds, now=None):
    """Count a failed sign-in in its own transaction; return the lock's end when this failure
    locks the username, else None."""
    now = now or utc_now()
    window = timedelta(seconds=window_seconds)
    for attempt in range(2):  # a concurrent first failure of the same username may insert first
        with sessions() as session:
            entry = session.scalar(select(LoginFailure).where(
                LoginFailure.username == _key(username)).with_for_update())
            if entry is None:
                entry = LoginFailure(username=_key(username), failures=0, last_failed_at=now)
                session.add(entry)
            elif (entry.locked_until is not None and entry.locked_until <= now) or \
                    now - entry.last_failed_at > window:
                entry.failures, entry.locked_until = 0, None  # a fresh start after a quiet spell
            entry.failures += 1
            entry.last_failed_at = now
            if entry.failures >= max_failures:
                entry.locked_until = now + window
            locked_until = entry.locked_until
            # forget other usernames' old failures, so guessing random names leaves no pile
            session.execute(delete(LoginFailure).where(
                LoginFailure.last_failed_at < now - 2 * window,
                LoginFailure.username != _key(username)))
            try:
                session.commit()
            except IntegrityError:
                if attempt:
                    raise
                continue
            return locked_until


def clear(session, username):
    """Forget a username's failures (after a successful sign-in or a new password); the caller
    commits."""
    session.execute(delete(LoginFailure).where(LoginFailure.username == _key(username)))
