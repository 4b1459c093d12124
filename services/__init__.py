"""The CRM's services, each a package: contracts (the gateway), quotes, inventory, documents, notifications."""
