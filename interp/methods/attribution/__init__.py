"""attribution family."""
