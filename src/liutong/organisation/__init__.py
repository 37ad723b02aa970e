"""Tenants, legal entities, venues, merchants, stores, terminals, staff and API keys."""
