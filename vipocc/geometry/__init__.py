"""geometry stage of the vipocc pipeline."""
