"""Staff accounts.

Revision ID: 0001_staff
Revises:
Create Date: 2025-01-01
"""
import sqlalchemy as sa
from alembic import op

from crm_gateway.models import UtcDateTime

revision = "0001_staff"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "staff",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("district", sa.String(64), nullable=True),
        sa.Column("supervisor_id", sa.String(36), sa.ForeignKey("staff.id", name="fk_staff_supervisor"),
                  nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("token_version", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("username", name="uq_staff_username"),
    )
    op.create_index("ix_staff_supervisor_id", "staff", ["supervisor_id"])


def downgrade():
    op.drop_index("ix_staff_supervisor_id", table_name="staff")
    op.drop_table("staff")
