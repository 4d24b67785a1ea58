"""models stage of the vipocc pipeline."""
