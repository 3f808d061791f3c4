"""The audit trail of staff accounts and their permissions: the append-only audit_entries
table and its triggers (crm_kit.audit).

Revision ID: 0003_audit_trail
Revises: 0002_login_failures
Create Date: 2026-12-03
"""
from crm_kit.audit import create_audit_trail, drop_audit_trail

revision = "0003_audit_trail"
down_revision = "0002_login_failures"
branch_labels = None
depends_on = None


def upgrade():
    create_audit_trail()


def downgrade():
    drop_audit_trail()
