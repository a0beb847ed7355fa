"""labels family: automatic input / output / combined feature labels and user edits."""
