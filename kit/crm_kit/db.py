"""The database of a service: engine, sessions, and the nameko DependencyProvider.

SQLite file by default, PostgreSQL by URL. Under eventlet PostgreSQL needs a green driver:
``crm_kit.run`` patches psycopg2 with psycogreen before anything connects. SQLite gets one
connection per process (a pool of one, which eventlet makes a green wait): SQLite allows one
writer at a time anyway, and a greenthread blocked in SQLite's busy handler would stall the
whole process while another greenthread holds the write lock.

In an entrypoint::

    with self.db.transaction() as session:
        return customers.create(session, data, actor)

The transaction commits when the block ends (before nameko sends the reply or acks the
message), rolls back on an exception; outbox events recorded in it are committed with it and
the relay is woken to publish them at once.
"""
import contextlib
import logging

from nameko.extensions import DependencyProvider
from sqlalchemy import create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from crm_kit import config

log = logging.getLogger(__name__)


def make_engine(url, **overrides):
    """An engine for ``url``. Statement parameters are hidden from error messages: they hold
    personal data, and error messages end up in logs."""
    url = config.normalize_database_url(url)
    if url.startswith("sqlite"):
        kwargs = dict(pool_size=1, max_overflow=0, pool_timeout=60, hide_parameters=True,
                      connect_args={"timeout": 30, "check_same_thread": False})
        kwargs.update(overrides)
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    kwargs = dict(pool_size=10, max_overflow=10, pool_pre_ping=True, pool_timeout=30,
                  hide_parameters=True)
    kwargs.update(overrides)
    return create_engine(url, **kwargs)


def make_sessionmaker(engine, service):
    """Sessions that know their service (for event envelopes) and wake the relay after commit."""
    factory = sessionmaker(engine, expire_on_commit=False, info={"service": service})
    return factory


def on_outbox_commit(factory, callback):
    """Call ``callback()`` after each commit of a session of ``factory`` that recorded events."""

    @event.listens_for(factory, "after_commit")
    def _after_commit(session):
        if session.info.pop("outbox_pending", False):
            callback()

    @event.listens_for(factory, "after_rollback")
    def _after_rollback(session):
        session.info.pop("outbox_pending", None)


@contextlib.contextmanager
def transaction(factory):
    """A session whose work is committed at the end of the block, or rolled back on error."""
    session: Session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def paginate(session, query, page, per_page, serialize):
    """One page of ``query`` (already ordered) as the API's list:
    ``{items: [serialize(row)...], total, page, per_page}``."""
    from sqlalchemy import func, select

    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = session.scalars(query.offset((page - 1) * per_page).limit(per_page)).all()
    return {"items": [serialize(row) for row in rows], "total": total, "page": page,
            "per_page": per_page}


def insert_new(session, model, rows):
    """Insert ``rows`` (dicts) into ``model``'s table, silently keeping the rows that exist
    already (a unique key taken): ``INSERT ... ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL.
    For work that two instances may do at once (count afterwards if the number matters: a
    driver's row count of a many-row statement is not reliable)."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    # through the Table, not the mapped class: the ORM path leaves out each row's None values
    # and so splits the rows into small groups (one round trip each on PostgreSQL)
    table = getattr(model, "__table__", model)
    session.execute(insert(table).on_conflict_do_nothing(), rows)


class WorkerDb:
    """What a worker sees as ``self.db``."""

    def __init__(self, provider):
        self._provider = provider

    def transaction(self):
        return transaction(self._provider.sessionmaker)

    def consume(self, handler, payload, apply):
        from crm_kit import inbox

        return inbox.consume(self._provider, handler, payload, apply)

    @property
    def service(self):
        return self._provider.service

    @property
    def provider(self):
        return self._provider


class Database(DependencyProvider):
    """SQLAlchemy engine + sessions for the service, and its outbox relay."""

    def setup(self):
        from crm_kit.outbox import OutboxRelay

        self.service = self.container.service_name
        self.url = self.container.config.get("DATABASE_URL") or config.database_url(self.service)
        self.engine = make_engine(self.url)
        self.sessionmaker = make_sessionmaker(self.engine, self.service)
        self.relay = OutboxRelay(
            self.service, self.sessionmaker,
            self.container.config.get("AMQP_URI") or config.amqp_uri())
        on_outbox_commit(self.sessionmaker, self.relay.wake)

    def start(self):
        from crm_kit.inbox import refresh_dead_letter_gauge

        refresh_dead_letter_gauge(self)
        self.container.spawn_managed_thread(self.relay.run, identifier="outbox-relay")

    def stop(self):
        self.relay.stop()
        self.engine.dispose()

    def kill(self):
        self.relay.stop()

    def get_dependency(self, worker_ctx):
        return WorkerDb(self)

    def is_ready(self):
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
