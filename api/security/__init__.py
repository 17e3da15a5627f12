"""HTTP side of security: authentication, route policies, abuse limits."""
