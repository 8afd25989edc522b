"""Search indexes built from the store: the only package that touches index files."""
