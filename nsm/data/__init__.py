"""Data: semantic triples, the three reasoning domains and their graphs."""
