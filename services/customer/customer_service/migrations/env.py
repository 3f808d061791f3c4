from crm_kit.audit import audit_metadata
from crm_kit.migrations import run_env
from customer_service.models import Base

run_env(Base.metadata, audit_metadata)
