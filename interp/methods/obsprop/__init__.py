"""obsprop family."""
