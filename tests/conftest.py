"""Shared fixtures. Tests use the real database (PostgreSQL in CI) and real sockets."""
