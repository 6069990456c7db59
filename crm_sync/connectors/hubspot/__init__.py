"""HubSpot: contacts upserted by email with the loyalty card, purchases and redemptions as custom events."""
