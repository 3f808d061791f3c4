"""``crm_build_info{service, version} 1``: which version of which app runs, on every app's
/metrics (the services through ``crm_kit.metrics``, the gateway through its own metrics module).
One definition for both, so a process that imports the two (a test) registers it once.
"max": under the gateway's ``PROMETHEUS_MULTIPROC_DIR`` the workers' copies read as one 1."""
from prometheus_client import Gauge

BUILD_INFO = Gauge("crm_build_info", "Always 1; labels say what runs.", ["service", "version"],
                   multiprocess_mode="max")
