"""training stage of the vipocc pipeline."""
