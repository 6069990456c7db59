"""The webhook CRM connector: Tessera's outbox events as signed JSON to any URL (see README.md)."""
