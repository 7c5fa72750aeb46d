import subprocess
import sys

CHECK = """
import asyncio
import piccolo_conf
from piccolo.engine.finder import engine_finder
from store.database import DatabaseNotConfigured, engine
from store.tables import Tenant

assert engine_finder() is piccolo_conf.DB is engine()
try:
    asyncio.run(Tenant.count().run())
except DatabaseNotConfigured as exc:
    print("refused:", exc)
"""


def test_piccolo_conf_imports_without_a_database_and_binds_on_first_use():
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)}  # no DATABASE_URL, no SCOPIX_*
    done = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "refused: DATABASE_URL is not set" in done.stdout
