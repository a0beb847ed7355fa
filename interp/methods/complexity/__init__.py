"""complexity family."""
