"""Developer and deployment tools (not part of the services)."""
