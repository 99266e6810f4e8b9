"""From a trained run to production: `export` (ONNX and torch.export programs, with the
preprocessing written as data and parity proven against the Predictor) and `compress`
(quantisation, pruning and distillation into new run directories). Each module is imported on
use; the optional packages they need are named extras (core/extras.py)."""
