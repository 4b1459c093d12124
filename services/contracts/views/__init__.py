"""The gateway's blueprints, one per resource."""
