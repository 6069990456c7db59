"""Salesforce CRM connector: Contacts and loyalty event records by external id (see README.md)."""
