from crm_kit.migrations import run_env
from service_desk_service.models import Base

run_env(Base.metadata)
