import os
import sys
from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker

from crm_kit.db import make_engine

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # the `sample` services package
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))



@pytest.fixture
def rpc(amqp_uri):
    """The stock nameko client: the kit must speak plain nameko RPC."""
    from nameko.standalone.rpc import ClusterRpcProxy

    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=10) as proxy:
        yield proxy


@pytest.fixture
def open_db():
    """``open_db(url)`` → a sessionmaker on a service's database, for looking inside it."""
    engines = []

    def open_(url):
        engine = make_engine(url, pool_size=1) if not url.startswith("sqlite") else make_engine(url)
        engines.append(engine)
        return sessionmaker(engine, expire_on_commit=False)

    yield open_
    for engine in engines:
        engine.dispose()
