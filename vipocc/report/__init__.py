"""report stage of the vipocc pipeline."""
