"""Alembic environment of the gateway's staff database (run by ``crm_gateway.db.upgrade``)."""
from alembic import context
from sqlalchemy import engine_from_config, pool

from crm_gateway.models import Base
from crm_kit.audit import audit_metadata
from crm_kit.migrations import migration_lock

config = context.config
target_metadata = [Base.metadata, audit_metadata]  # staff, and the audit trail of their changes

if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"),
                      target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = engine_from_config(config.get_section(config.config_ini_section, {}),
                                prefix="sqlalchemy.", poolclass=pool.NullPool)
    # the kit's advisory lock on PostgreSQL: gateway replicas starting together and the
    # migrate-only Job (python -m crm_gateway.migrate) wait for each other
    with engine.connect() as connection, migration_lock(connection):
        # SQLite cannot ALTER most things: batch mode rebuilds tables instead
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite",
                          compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
