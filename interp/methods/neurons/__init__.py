"""neurons family."""
