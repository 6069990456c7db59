"""CRM connectors shipped with Tessera, one package each (see crm_sync/base.py)."""
