"""Failed sign-ins per username, for the lockout after repeated failures.

Revision ID: 0002_login_failures
Revises: 0001_staff
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

from crm_gateway.models import UtcDateTime

revision = "0002_login_failures"
down_revision = "0001_staff"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "login_failures",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failed_at", UtcDateTime(), nullable=False),
        sa.Column("locked_until", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_login_failures_last_failed_at", "login_failures", ["last_failed_at"])


def downgrade():
    op.drop_index("ix_login_failures_last_failed_at", table_name="login_failures")
    op.drop_table("login_failures")
