"""Names shared by the cross-service tests."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADMIN = ("admin", "e2e-admin-password")
