"""data stage of the vipocc pipeline."""
