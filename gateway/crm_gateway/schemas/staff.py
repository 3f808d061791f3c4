import marshmallow as ma
from marshmallow import fields, validate, validates

from crm_gateway.auth import MIN_PASSWORD_LENGTH
from crm_gateway.permissions import ROLES
from crm_gateway.schemas.common import PageQuery, page_of

USERNAME = validate.Regexp(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{2,63}$",
                           error="3-64 letters, digits, '.', '_' or '-', starting with a "
                                 "letter or digit")
PASSWORD = validate.Length(min=MIN_PASSWORD_LENGTH, max=256,
                           error=f"must be {MIN_PASSWORD_LENGTH} to 256 characters")


def roles_field(**kwargs):
    return fields.List(fields.String(validate=validate.OneOf(ROLES)),
                       validate=validate.Length(min=1, error="give at least one role"),
                       metadata={"description": "from: " + ", ".join(ROLES)}, **kwargs)


class _RolesCheck:
    @validates("roles")
    def _unique_roles(self, value, **_):
        if len(set(value)) != len(value):
            raise ma.ValidationError("lists a role twice")


class StaffCreateSchema(_RolesCheck, ma.Schema):
    username = fields.String(required=True, validate=USERNAME)
    password = fields.String(required=True, validate=PASSWORD, load_only=True)
    display_name = fields.String(required=True, validate=validate.Length(1, 100))
    roles = roles_field(required=True)
    district = fields.String(allow_none=True, validate=validate.Length(max=64))
    supervisor_id = fields.String(allow_none=True, validate=validate.Length(1, 36))


class StaffUpdateSchema(_RolesCheck, ma.Schema):
    display_name = fields.String(validate=validate.Length(1, 100))
    roles = roles_field()
    district = fields.String(allow_none=True, validate=validate.Length(max=64))
    supervisor_id = fields.String(allow_none=True, validate=validate.Length(1, 36))
    active = fields.Boolean()
    password = fields.String(validate=PASSWORD, load_only=True)


class StaffSchema(ma.Schema):
    id = fields.String(required=True)
    username = fields.String(required=True)
    display_name = fields.String(required=True)
    roles = fields.List(fields.String(), required=True)
    district = fields.String(allow_none=True)
    supervisor_id = fields.String(allow_none=True)
    active = fields.Boolean(required=True)
    created_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)


class StaffQuerySchema(PageQuery):
    q = fields.String(metadata={"description": "part of the username or display name"})
    role = fields.String(validate=validate.OneOf(ROLES))
    supervisor_id = fields.String()
    active = fields.Boolean()


StaffPageSchema = page_of(StaffSchema, "StaffPage")
