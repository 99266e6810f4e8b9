"""TensorBoard (torch.utils.tensorboard.SummaryWriter, event files in RUN_DIR/tensorboard):
a scalar per history column each epoch, the hyper-parameters with the final metrics (the
HParams plugin: SummaryWriter.add_hparams), and the run's report plots as images at the end
(evaluation/plots.py wrote them to RUN_DIR/plots/*.png)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepfit.core.extras import import_extra
from deepfit.training.loggers.base import Logger, scalars


class TensorBoardLogger(Logger):
    def __init__(self, log_dir: Path) -> None:
        import_extra("tensorboard", "tensorboard", "--log tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir)
        self.writer = SummaryWriter(log_dir=str(self.log_dir))
        self.params: dict[str, Any] = {}

    def log_params(self, params: dict[str, Any]) -> None:
        # the HParams plugin takes numbers, strings and booleans
        self.params = {k: (v if isinstance(v, (int, float, str, bool)) else str(v))
                       for k, v in params.items() if v is not None}

    def log_metrics(self, metrics: dict[str, float], step: int, prefix: str = "") -> None:
        for key, value in scalars(metrics).items():
            if key != "epoch":
                self.writer.add_scalar(prefix + key, value, step)

    def finish(self, run_dir: Path, metrics: dict[str, Any]) -> None:
        final = {f"test/{k}": v for k, v in scalars(metrics).items()}
        if self.params:
            self.writer.add_hparams(self.params, final, run_name=".")  # in this run's own folder
        for png in sorted((Path(run_dir) / "plots").glob("*.png")):
            self.writer.add_image(f"plots/{png.stem}", _read_png(png), 0, dataformats="HWC")
        self.close()

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


def _read_png(path: Path):
    """A PNG as an [H, W, 3] float array in [0, 1] (matplotlib.image.imread; alpha dropped)."""
    from matplotlib.image import imread

    return imread(path)[..., :3]
