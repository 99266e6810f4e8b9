"""The run lifecycle: `prepare` (source → Dataset → splits → fitted preprocessing), `train` (the
model, the Trainer, the run directory), `directory` (what a run directory holds, and load /
evaluate / predict / report on one), `predictor` (a trained model with its preprocessing),
`forecast` (from a new time series) and `resume`."""
