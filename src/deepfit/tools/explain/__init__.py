"""`deepfit explain`: permutation importance and integrated gradients of a trained run, checked
by completeness and the model-randomisation test (run.py)."""

from deepfit.tools.explain.run import explain

__all__ = ["explain"]
