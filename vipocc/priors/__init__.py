"""priors stage of the vipocc pipeline."""
