"""Durable background work: deferred jobs and the transactional outbox, run by workers."""
