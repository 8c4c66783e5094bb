"""The service's routers, one module per concern: collections, documents (and uploads),
queries, and operations (health, readiness, verify, compact)."""
