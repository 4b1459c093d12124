"""The kit every CRM service is built from: settings, database, messaging, web plumbing."""
