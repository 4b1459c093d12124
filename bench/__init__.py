"""`make bench`: the contract saga under load, through the gateway, in embedded or RabbitMQ + PostgreSQL mode."""
