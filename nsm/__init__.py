"""NSM: a hierarchical neurosymbolic model over graphs of semantic triples."""

__version__ = "0.1.0"
