"""examples family: per-feature corpus statistics (top-k and quantile examples, activation
histograms, density) computed for all features of a site at once (`stats`), and their store
rows (`store`)."""
