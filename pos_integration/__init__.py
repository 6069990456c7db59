"""The counter: POS devices and their keys; later the scan API, webhooks and connectors."""
