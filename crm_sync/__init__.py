"""The CRM side: connections, deliveries from the outbox, connectors (built in the CRM sync issue)."""
