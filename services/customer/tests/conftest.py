import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from crm_kit.db import make_engine, make_sessionmaker  # noqa: E402
from crm_kit.migrations import upgrade  # noqa: E402
from customer_fixtures import MIGRATIONS  # noqa: E402


@pytest.fixture
def session(tmp_path):
    """A session on a freshly migrated customer database (SQLite), as the service has."""
    url = f"sqlite:///{tmp_path / 'customer.db'}"
    upgrade(MIGRATIONS, url)
    engine = make_engine(url)
    factory = make_sessionmaker(engine, "customer")
    with factory() as session:
        yield session
    engine.dispose()
