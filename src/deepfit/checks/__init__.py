"""The checks of the guide, each a list of `Finding`s (findings.py): the data audit (audit.py,
and arrays.py for images and sequences), the model sanity checks (sanity.py), what can be known
before the first step (before_training.py) and the end-of-run checklist (useless.py). The
`deepfit check` tool that runs them on a source is tools/check.py."""
