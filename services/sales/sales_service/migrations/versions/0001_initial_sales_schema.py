"""initial sales schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-24 09:44:34.551366
"""
from alembic import op
import sqlalchemy as sa
import crm_kit.types
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    
    op.create_table('opportunities',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('customer_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('campaign_id', sa.String(length=36), nullable=True),
    sa.Column('budget', crm_kit.types.Money(precision=14, scale=2), nullable=True),
    sa.Column('district', sa.String(length=64), nullable=True),
    sa.Column('layout', sa.String(length=32), nullable=True),
    sa.Column('move_in_date', sa.Date(), nullable=True),
    sa.Column('expected_value', crm_kit.types.Money(precision=14, scale=2), nullable=True),
    sa.Column('expected_close', sa.Date(), nullable=True),
    sa.Column('owner_id', sa.String(length=36), nullable=True),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('stage_entered_at', crm_kit.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('loss_reason', sa.String(length=32), nullable=True),
    sa.Column('loss_note', sa.Text(), nullable=True),
    sa.Column('lease_id', sa.String(length=36), nullable=True),
    sa.Column('renewal_of_lease_id', sa.String(length=36), nullable=True),
    sa.Column('stagnant_since', crm_kit.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('created_at', crm_kit.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crm_kit.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('renewal_of_lease_id')
    )
    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_opportunities_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_opportunities_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_opportunities_stage'), ['stage'], unique=False)

    op.create_table('opportunity_stage_limits',
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('days', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('stage')
    )
    op.create_table('tasks',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('owner_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('due_at', crm_kit.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('remind_at', crm_kit.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('reminded_at', crm_kit.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('customer_id', sa.String(length=36), nullable=True),
    sa.Column('opportunity_id', sa.String(length=36), nullable=True),
    sa.Column('bill_id', sa.String(length=36), nullable=True),
    sa.Column('lease_id', sa.String(length=36), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('result', sa.Text(), nullable=True),
    sa.Column('done_at', crm_kit.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('urge_count', sa.Integer(), nullable=False),
    sa.Column('urged_at', crm_kit.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('urged_by', sa.String(length=36), nullable=True),
    sa.Column('created_by', sa.String(length=36), nullable=True),
    sa.Column('created_at', crm_kit.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('kind', 'bill_id', name='uq_task_per_bill')
    )
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tasks_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tasks_due_at'), ['due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_tasks_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tasks_status'), ['status'], unique=False)

    op.create_table('units',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('building', sa.String(length=100), nullable=False),
    sa.Column('district', sa.String(length=64), nullable=False),
    sa.Column('layout', sa.String(length=32), nullable=False),
    sa.Column('area_sqm', crm_kit.types.Money(precision=14, scale=2), nullable=False),
    sa.Column('floor', sa.Integer(), nullable=False),
    sa.Column('monthly_rent', crm_kit.types.Money(precision=14, scale=2), nullable=False),
    sa.Column('amenities', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', crm_kit.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crm_kit.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_units_district'), ['district'], unique=False)
        batch_op.create_index(batch_op.f('ix_units_layout'), ['layout'], unique=False)
        batch_op.create_index(batch_op.f('ix_units_status'), ['status'], unique=False)

    op.create_table('leases',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('customer_id', sa.String(length=36), nullable=False),
    sa.Column('unit_id', sa.String(length=36), nullable=False),
    sa.Column('opportunity_id', sa.String(length=36), nullable=True),
    sa.Column('owner_id', sa.String(length=36), nullable=True),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('monthly_rent', crm_kit.types.Money(precision=14, scale=2), nullable=False),
    sa.Column('deposit', crm_kit.types.Money(precision=14, scale=2), nullable=False),
    sa.Column('payment_cycle', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('renewed_from_id', sa.String(length=36), nullable=True),
    sa.Column('renewed_to_id', sa.String(length=36), nullable=True),
    sa.Column('terminated_on', sa.Date(), nullable=True),
    sa.Column('termination_reason', sa.Text(), nullable=True),
    sa.Column('credit', crm_kit.types.Money(precision=14, scale=2), nullable=False),
    sa.Column('signed_at', crm_kit.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', crm_kit.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('created_at', crm_kit.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crm_kit.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('leases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_leases_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_leases_end_date'), ['end_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_leases_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_leases_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_leases_unit_id'), ['unit_id'], unique=False)

    op.create_table('opportunity_stage_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('opportunity_id', sa.String(length=36), nullable=False),
    sa.Column('from_stage', sa.String(length=16), nullable=True),
    sa.Column('to_stage', sa.String(length=16), nullable=False),
    sa.Column('trigger', sa.String(length=48), nullable=False),
    sa.Column('actor_id', sa.String(length=36), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('occurred_at', crm_kit.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['opportunity_id'], ['opportunities.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('opportunity_stage_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_opportunity_stage_changes_opportunity_id'), ['opportunity_id'], unique=False)

    op.create_table('plan_steps',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('opportunity_id', sa.String(length=36), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('done_at', crm_kit.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('result', sa.Text(), nullable=True),
    sa.Column('done_by', sa.String(length=36), nullable=True),
    sa.ForeignKeyConstraint(['opportunity_id'], ['opportunities.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('plan_steps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_plan_steps_opportunity_id'), ['opportunity_id'], unique=False)

    op.create_table('task_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('task_id', sa.String(length=36), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.String(length=36), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('occurred_at', crm_kit.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('task_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_task_events_task_id'), ['task_id'], unique=False)

    op.create_table('viewings',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('opportunity_id', sa.String(length=36), nullable=False),
    sa.Column('customer_id', sa.String(length=36), nullable=False),
    sa.Column('unit_id', sa.String(length=36), nullable=False),
    sa.Column('staff_id', sa.String(length=36), nullable=False),
    sa.Column('scheduled_at', crm_kit.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', crm_kit.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('result', sa.String(length=32), nullable=True),
    sa.Column('outcome', sa.Text(), nullable=True),
    sa.Column('created_at', crm_kit.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', crm_kit.types.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['opportunity_id'], ['opportunities.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('viewings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_viewings_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_viewings_opportunity_id'), ['opportunity_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_viewings_scheduled_at'), ['scheduled_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_viewings_staff_id'), ['staff_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_viewings_unit_id'), ['unit_id'], unique=False)

    op.create_table('bills',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('lease_id', sa.String(length=36), nullable=False),
    sa.Column('customer_id', sa.String(length=36), nullable=False),
    sa.Column('owner_id', sa.String(length=36), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=True),
    sa.Column('period_start', sa.Date(), nullable=True),
    sa.Column('period_end', sa.Date(), nullable=True),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('amount', crm_kit.types.Money(precision=14, scale=2), nullable=False),
    sa.Column('paid', crm_kit.types.Money(precision=14, scale=2), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('late_fee_for_bill_id', sa.String(length=36), nullable=True),
    sa.Column('overdue_notified_at', crm_kit.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('voided_at', crm_kit.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('created_at', crm_kit.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', crm_kit.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['lease_id'], ['leases.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('late_fee_for_bill_id')
    )
    with op.batch_alter_table('bills', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bills_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_bills_lease_id'), ['lease_id'], unique=False)
        batch_op.create_index('ix_bills_open_due', ['status', 'due_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_bills_owner_id'), ['owner_id'], unique=False)

    op.create_table('deposit_refunds',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('lease_id', sa.String(length=36), nullable=False),
    sa.Column('deposit_paid', crm_kit.types.Money(precision=14, scale=2), nullable=False),
    sa.Column('credit', crm_kit.types.Money(precision=14, scale=2), nullable=False),
    sa.Column('deductions', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('deducted', crm_kit.types.Money(precision=14, scale=2), nullable=False),
    sa.Column('refunded', crm_kit.types.Money(precision=14, scale=2), nullable=False),
    sa.Column('refunded_at', crm_kit.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.String(length=36), nullable=True),
    sa.ForeignKeyConstraint(['lease_id'], ['leases.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lease_id')
    )
    op.create_table('payments',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('bill_id', sa.String(length=36), nullable=False),
    sa.Column('lease_id', sa.String(length=36), nullable=False),
    sa.Column('customer_id', sa.String(length=36), nullable=False),
    sa.Column('amount', crm_kit.types.Money(precision=14, scale=2), nullable=False),
    sa.Column('paid_at', crm_kit.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('idempotency_key', sa.String(length=100), nullable=True),
    sa.Column('balance_after', crm_kit.types.Money(precision=14, scale=2), nullable=False),
    sa.Column('status_after', sa.String(length=16), nullable=False),
    sa.Column('recorded_by', sa.String(length=36), nullable=True),
    sa.Column('created_at', crm_kit.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['bill_id'], ['bills.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_key')
    )
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payments_bill_id'), ['bill_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payments_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payments_lease_id'), ['lease_id'], unique=False)

    op.create_table('dead_letters',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('handler', sa.String(length=150), nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=True),
    sa.Column('event_type', sa.String(length=100), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('failed_at', crm_kit.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('replayed_at', crm_kit.types.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dead_letters_status'), ['status'], unique=False)

    op.create_table('outbox_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('event_type', sa.String(length=100), nullable=False),
    sa.Column('envelope', sa.Text(), nullable=False),
    sa.Column('created_at', crm_kit.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('published_at', crm_kit.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id')
    )
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_unpublished', ['id'], unique=False, postgresql_where=sa.text('published_at IS NULL'), sqlite_where=sa.text('published_at IS NULL'))

    op.create_table('processed_events',
    sa.Column('handler', sa.String(length=150), nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('processed_at', crm_kit.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('handler', 'event_id')
    )
    


def downgrade():
    
    op.drop_table('processed_events')
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_unpublished', postgresql_where=sa.text('published_at IS NULL'), sqlite_where=sa.text('published_at IS NULL'))

    op.drop_table('outbox_events')
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dead_letters_status'))

    op.drop_table('dead_letters')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payments_lease_id'))
        batch_op.drop_index(batch_op.f('ix_payments_customer_id'))
        batch_op.drop_index(batch_op.f('ix_payments_bill_id'))

    op.drop_table('payments')
    op.drop_table('deposit_refunds')
    with op.batch_alter_table('bills', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bills_owner_id'))
        batch_op.drop_index('ix_bills_open_due')
        batch_op.drop_index(batch_op.f('ix_bills_lease_id'))
        batch_op.drop_index(batch_op.f('ix_bills_customer_id'))

    op.drop_table('bills')
    with op.batch_alter_table('viewings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_viewings_unit_id'))
        batch_op.drop_index(batch_op.f('ix_viewings_staff_id'))
        batch_op.drop_index(batch_op.f('ix_viewings_scheduled_at'))
        batch_op.drop_index(batch_op.f('ix_viewings_opportunity_id'))
        batch_op.drop_index(batch_op.f('ix_viewings_customer_id'))

    op.drop_table('viewings')
    with op.batch_alter_table('task_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_task_events_task_id'))

    op.drop_table('task_events')
    with op.batch_alter_table('plan_steps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_plan_steps_opportunity_id'))

    op.drop_table('plan_steps')
    with op.batch_alter_table('opportunity_stage_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_opportunity_stage_changes_opportunity_id'))

    op.drop_table('opportunity_stage_changes')
    with op.batch_alter_table('leases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_leases_unit_id'))
        batch_op.drop_index(batch_op.f('ix_leases_status'))
        batch_op.drop_index(batch_op.f('ix_leases_owner_id'))
        batch_op.drop_index(batch_op.f('ix_leases_end_date'))
        batch_op.drop_index(batch_op.f('ix_leases_customer_id'))

    op.drop_table('leases')
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_units_status'))
        batch_op.drop_index(batch_op.f('ix_units_layout'))
        batch_op.drop_index(batch_op.f('ix_units_district'))

    op.drop_table('units')
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tasks_status'))
        batch_op.drop_index(batch_op.f('ix_tasks_owner_id'))
        batch_op.drop_index(batch_op.f('ix_tasks_due_at'))
        batch_op.drop_index(batch_op.f('ix_tasks_customer_id'))

    op.drop_table('tasks')
    op.drop_table('opportunity_stage_limits')
    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_opportunities_stage'))
        batch_op.drop_index(batch_op.f('ix_opportunities_owner_id'))
        batch_op.drop_index(batch_op.f('ix_opportunities_customer_id'))

    op.drop_table('opportunities')
    
