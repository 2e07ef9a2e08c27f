"""Figures: each function takes data and returns a matplotlib Figure; none shows or saves one.

data (before training), training (curves per epoch), evaluation (confusion matrices, mistakes,
disagreements, Grad-CAM). The callers (notebooks, training.outputs, evaluation.report) decide
where a figure goes.
"""
