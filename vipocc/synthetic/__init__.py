"""synthetic stage of the vipocc pipeline."""
