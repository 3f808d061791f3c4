"""audit trail: the append-only audit_entries table and its triggers (crm_kit.audit)

Revision ID: 0002_audit_trail
Revises: 0001
Create Date: 2026-12-03
"""
from crm_kit.audit import create_audit_trail, drop_audit_trail

revision = "0002_audit_trail"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    create_audit_trail()


def downgrade():
    drop_audit_trail()
