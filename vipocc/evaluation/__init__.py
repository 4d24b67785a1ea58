"""evaluation stage of the vipocc pipeline."""
