"""circuits family."""
