"""The tenant: merchants, their stores, loyalty programs, tiers, rewards and staff."""
