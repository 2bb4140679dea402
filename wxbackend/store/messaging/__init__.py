"""SQL for inbound pushes, keyword rules and the outbox."""
