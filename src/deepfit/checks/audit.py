"""Data audit: what in the data would make a model fail, mislead, or not be worth training.

`audit_data` runs the checks every modality shares (checks/rows.py: sample size, class balance,
class sizes), then the data's modality's own (its `audit`: a table's columns and rows in
modalities/tabular/audit.py; images' and sequences' arrays through checks/arrays.py; text
columns in modalities/text/audit.py), and after preprocessing its `audit_fitted`. Every
finding's fix is then the modality's own advice where it has one for that check (`Modality.fixes`:
transfer learning for few images, gradient boosting for a small table …).
"""

from __future__ import annotations

from dataclasses import replace

from deepfit.checks.findings import Finding
from deepfit.checks.rows import class_balance, class_sizes, sample_size
from deepfit.data.dataset import Dataset
from deepfit.data.split import Splits
from deepfit.modalities import get_modality


def audit_data(data: Dataset, splits: Splits | None = None, test_data: Dataset | None = None,
               *, seed: int = 0) -> list[Finding]:
    """Every data check. `splits` are the row indices training would use (data.split); without
    them the cross-split leakage check is skipped. `test_data` is an explicit held-out file."""
    held_apart = test_data is not None or (splits is not None and not len(splits.test))
    modality = get_modality(data.modality)
    findings = (sample_size(data, modality.noun) + class_balance(data)
                + class_sizes(data, 2 if held_apart else 3, modality.noun))
    findings += modality.audit(data, splits, test_data, seed=seed)
    return [replace(f, fix=modality.fixes[f.check]) if f.fix and f.check in modality.fixes else f
            for f in findings]
