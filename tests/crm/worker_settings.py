"""Settings for a Celery worker started by the CRM tests: the project's own, plus the stand-in CRM
connector (a worker is a separate process, so a pytest settings override cannot reach it)."""
from config.settings import *  # noqa: F403

TESSERA_CRM_CONNECTORS = ["tests.crm.crm_test_connector.StandInCrmConnector"]
