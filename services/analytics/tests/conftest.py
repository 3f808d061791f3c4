import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
# analytics_service before it is pip-installed, and analytics_fixtures
for path in (HERE.parent, HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from crm_kit.db import make_engine, make_sessionmaker  # noqa: E402
from crm_kit.migrations import upgrade  # noqa: E402
from analytics_fixtures import MIGRATIONS  # noqa: E402


@pytest.fixture
def session(tmp_path):
    """A session on a freshly migrated analytics database (SQLite), as the service has."""
    url = f"sqlite:///{tmp_path / 'analytics.db'}"
    upgrade(MIGRATIONS, url)
    engine = make_engine(url)
    factory = make_sessionmaker(engine, "analytics")
    with factory() as session:
        yield session
    engine.dispose()
