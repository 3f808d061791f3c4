"""``POST /api/v1/auth/token`` (sign in) and ``GET /api/v1/me``."""
from flask import current_app
from flask_smorest import Blueprint
from sqlalchemy import select

from crm_gateway import db, lockout
from crm_gateway.auth import check_password, current_caller, issue_token
from crm_gateway.blueprints import AUTH_ERRORS, error_responses
from crm_gateway.errors import Unauthorized
from crm_gateway.models import Staff
from crm_gateway.schemas.auth import TokenRequestSchema, TokenSchema
from crm_gateway.schemas.staff import StaffSchema

blp = Blueprint("auth", __name__, url_prefix="/api/v1", description="Signing in")


@blp.route("/auth/token", methods=["POST"])
@blp.doc(security=[])
@blp.arguments(TokenRequestSchema)
@blp.response(200, TokenSchema)
@error_responses(blp, 401)
def issue_access_token(credentials):
    """Exchange a username and password for a bearer token.

    After repeated wrong passwords the username is locked for a while: 429 with Retry-After.
    """
    settings = current_app.config["CRM_SETTINGS"]
    username = credentials["username"].lower()
    session = db.session()
    lockout.check_not_locked(session, username)
    staff = session.scalar(select(Staff).where(Staff.username == username))
    # one answer for every failure, so a caller cannot probe which usernames exist
    if not check_password(staff, credentials["password"]) or not staff.active:
        session.rollback()
        sessions = current_app.extensions["crm_gateway"]["sessions"]
        locked_until = lockout.record_failure(sessions, username, settings.login_max_failures,
                                              settings.login_lockout_seconds)
        if locked_until is not None:
            raise lockout.locked_error(locked_until, lockout.utc_now())
        raise Unauthorized("Wrong username or password.")
    lockout.clear(session, username)
    session.commit()
    token, expires_in = issue_token(staff)
    return {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}


@blp.route("/me", methods=["GET"])
@blp.response(200, StaffSchema)
@error_responses(blp, *AUTH_ERRORS)
def who_am_i():
    """The signed-in staff member."""
    return db.session().get(Staff, current_caller().id)
