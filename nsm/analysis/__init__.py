"""Analysis of trained runs: explain one prediction, draw its hierarchy, report on training.

These modules read run directories, models and datasets (above :mod:`nsm.job`); the CLI calls
them. matplotlib is imported only by the drawing and report code, so ``import nsm`` stays light.
"""
