from crm_kit.migrations import run_env
from sample.services import Base

run_env(Base.metadata)
