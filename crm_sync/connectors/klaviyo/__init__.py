"""Klaviyo: loyalty profiles, loyalty events and marketing consent, through Klaviyo's JSON:API."""
