"""Staff accounts: ``POST/GET /api/v1/staff``, ``GET/PATCH /api/v1/staff/{id}``."""
from flask_smorest import Blueprint
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from crm_kit.errors import Conflict, InvalidInput, NotFound
from crm_gateway import audit_trail, db, lockout
from crm_gateway.auth import hash_password, staff_directory
from crm_gateway.blueprints import AUTH_ERRORS, actor, error_responses
from crm_gateway.models import Staff, new_id
from crm_gateway.permissions import ADMIN
from crm_gateway.schemas.staff import (StaffCreateSchema, StaffPageSchema, StaffQuerySchema,
                                       StaffSchema, StaffUpdateSchema)

blp = Blueprint("staff", __name__, url_prefix="/api/v1", description="Staff accounts and roles")


def _get_staff(session, staff_id):
    staff = session.get(Staff, staff_id)
    if staff is None:
        raise NotFound(f"Staff member {staff_id} does not exist.", {"staff_id": staff_id})
    return staff


def _check_supervisor(session, supervisor_id, staff_id=None):
    if supervisor_id is None:
        return
    if supervisor_id == staff_id:
        raise InvalidInput({"supervisor_id": ["cannot be the staff member themselves"]})
    if session.get(Staff, supervisor_id) is None:
        raise InvalidInput({"supervisor_id": ["is not an existing staff member"]})


def _username_taken(username):
    return Conflict(f"The username {username!r} is taken.", {"username": ["is taken"]})


@blp.route("/staff", methods=["POST"])
@blp.arguments(StaffCreateSchema)
@blp.response(201, StaffSchema)
@error_responses(blp, *AUTH_ERRORS, 409)
def create_staff(data):
    """Create a staff account (admin)."""
    session = db.session()
    username = data["username"].lower()
    if session.scalar(select(Staff.id).where(Staff.username == username)):
        raise _username_taken(username)
    _check_supervisor(session, data.get("supervisor_id"))
    staff = Staff(id=new_id(), username=username, password_hash=hash_password(data["password"]),
                  display_name=data["display_name"], roles=data["roles"],
                  district=data.get("district"), supervisor_id=data.get("supervisor_id"),
                  active=True, token_version=1)
    session.add(staff)
    audit_trail.record_staff(session, actor(), "staff.created", staff, None)
    try:
        session.commit()
    except IntegrityError:  # created by a concurrent request since our check
        session.rollback()
        raise _username_taken(username)
    return staff


@blp.route("/staff", methods=["GET"])
@blp.arguments(StaffQuerySchema, location="query")
@blp.response(200, StaffPageSchema)
@error_responses(blp, *AUTH_ERRORS)
def list_staff(query):
    """Staff accounts, filtered by text, role, supervisor or active flag."""
    # the staff table is small (hundreds): filtering roles (a JSON list) in Python keeps it portable
    staff = db.session().scalars(select(Staff).order_by(Staff.username)).all()
    text = (query.get("q") or "").lower()
    selected = [
        member for member in staff
        if (not text or text in member.username or text in member.display_name.lower())
        and ("role" not in query or query["role"] in member.roles)
        and ("supervisor_id" not in query or member.supervisor_id == query["supervisor_id"])
        and ("active" not in query or member.active == query["active"])
    ]
    page, per_page = query["page"], query["per_page"]
    start = (page - 1) * per_page
    return {"items": selected[start:start + per_page], "total": len(selected), "page": page,
            "per_page": per_page}


@blp.route("/staff/<staff_id>", methods=["GET"])
@blp.response(200, StaffSchema)
@error_responses(blp, *AUTH_ERRORS, 404)
def get_staff(staff_id):
    """One staff account."""
    return _get_staff(db.session(), staff_id)


@blp.route("/staff/<staff_id>", methods=["PATCH"])
@blp.arguments(StaffUpdateSchema)
@blp.response(200, StaffSchema)
@error_responses(blp, *AUTH_ERRORS, 404, 409)
def update_staff(changes, staff_id):
    """Change roles, name, district, supervisor, active flag or password (admin).

    A new password or deactivation revokes every token issued before.
    """
    if not changes:
        raise InvalidInput({"_schema": ["give at least one field to change"]})
    session = db.session()
    staff = _get_staff(session, staff_id)
    if "supervisor_id" in changes:
        _check_supervisor(session, changes["supervisor_id"], staff.id)
    was_admin = staff.active and ADMIN in staff.roles
    stays_admin = changes.get("active", staff.active) and ADMIN in changes.get("roles", staff.roles)
    if was_admin and not stays_admin and _active_admins(session) <= 1:
        raise Conflict("This is the last active admin; make another admin first.",
                       {"roles": ["the last active admin must keep the admin role"]})

    revoke = "password" in changes or changes.get("active") is False
    before, password_changed = audit_trail.staff_view(staff), "password" in changes
    if "password" in changes:
        staff.password_hash = hash_password(changes.pop("password"))
        lockout.clear(session, staff.username)  # a new password also lifts a lockout
    for field, value in changes.items():
        setattr(staff, field, value)
    if revoke:
        staff.token_version += 1
    audit_trail.record_staff(session, actor(), "staff.updated", staff, before, password_changed)
    session.commit()
    staff_directory().forget(staff.id)
    return staff


def _active_admins(session):
    return sum(1 for roles in session.scalars(select(Staff.roles).where(Staff.active.is_(True)))
               if ADMIN in (roles or ()))
