"""Analysis of data and trained runs: label-leakage baselines, explain one prediction, draw its
hierarchy, measure its faithfulness, report on training.

These modules read run directories, models and datasets (above :mod:`nsm.job`); the CLI calls
them. matplotlib is imported only by the drawing and report code, so ``import nsm`` stays light.
"""
