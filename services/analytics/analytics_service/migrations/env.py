from crm_kit.migrations import run_env
from analytics_service.models import Base

run_env(Base.metadata)
