"""Migrate the gateway's staff database and exit: ``python -m crm_gateway.migrate``.

The gateway's counterpart of ``python -m crm_kit.run --migrate-only``: the upgrade
``crm_gateway.app.create_app`` runs at start (``db.upgrade`` of ``CRM_GATEWAY_DATABASE_URL``,
under ``db.startup_lock`` in the data directory and the kit's PostgreSQL advisory lock), reported in one line on stdout; exit 1 with
one line on stderr when the database cannot be reached or a migration fails
(``crm_kit.migrate``). The Kubernetes Job ``gateway-migrate`` runs it.
"""
import contextlib
import os
import sys

from crm_kit import logging as crm_logging
from crm_kit.migrate import migrate_only

from crm_gateway import db
from crm_gateway import settings as settings_module


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        print("usage: python -m crm_gateway.migrate  (the database: CRM_GATEWAY_DATABASE_URL)",
              file=sys.stderr)
        return 2
    crm_logging.configure("gateway")
    # the database URL and data directory exactly as the gateway reads them; migrations sign
    # nothing, so a placeholder keeps load() from creating <data dir>/jwt-secret
    settings = settings_module.load({"JWT_SECRET": "not-used-by-migrations"})

    def upgrade():
        # Every gateway process takes this lock in its data directory before migrating. One
        # that cannot write there (a Job's read-only root) shares it with no gateway process,
        # since none could start there, so there is nobody to wait for.
        writable = os.access(settings.data_dir, os.W_OK)
        with db.startup_lock(settings.data_dir) if writable else contextlib.nullcontext():
            db.upgrade(settings.database_url)

    return migrate_only("gateway", db.MIGRATIONS_DIR, settings.database_url, upgrade)


if __name__ == "__main__":
    sys.exit(main())
