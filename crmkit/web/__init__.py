"""HTTP plumbing shared by every service: the app skeleton, errors, auth, pagination, health."""
