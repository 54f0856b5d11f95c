"""Models: the hierarchical NSM and the baselines it is compared with."""
