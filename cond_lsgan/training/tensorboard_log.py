"""TensorBoard events of a training run (`train.tensorboard = true`), for users who watch runs there.

The run folder's own files (metrics.jsonl, samples/) stay the record; `RunBoard` writes
the same numbers and grids through `torch.utils.tensorboard` into `<run>/tensorboard`, so
`tensorboard --logdir runs/` shows every run side by side. TensorBoard is an optional
package (the `tensorboard` extra): `require_tensorboard` turns its absence into one line
before a run starts, on every rank. Rank 0 alone writes events, as it alone writes
metrics.jsonl. A resumed run hides the events after the step it continues from
(SummaryWriter's `purge_step`): a killed run may have logged steps past its last checkpoint,
and the resumed run logs them again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..data_tools_api import InputError

TENSORBOARD_DIR = "tensorboard"  # inside the run folder
# metrics.jsonl key -> TensorBoard tag
SCALARS = {"d_loss": "loss/d", "g_loss": "loss/g", "images_per_s": "images_per_s", "bad_steps": "bad_steps"}
GRID_TAG = "samples"


def require_tensorboard() -> None:
    """InputError (one line) unless `torch.utils.tensorboard` can be used, i.e. the tensorboard package is installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401 (the import is the check)
    except ImportError:
        raise InputError("train.tensorboard = true needs the tensorboard package, which is not installed: "
                         "pip install 'cond-lsgan[tensorboard]' (or set train.tensorboard = false)") from None


class RunBoard:
    """Scalars and grids of one run as TensorBoard events; does nothing when not enabled (ranks other than 0, or off)."""

    def __init__(self, run_dir: str | Path, start_step: int, enabled: bool) -> None:
        self._writer = None
        if not enabled:
            return
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: events at and after it are hidden; those of start_step itself came before the checkpoint
        self._writer = SummaryWriter(log_dir=str(Path(run_dir) / TENSORBOARD_DIR), purge_step=start_step + 1 if start_step else None)

    def metrics(self, record: dict) -> None:
        """One metrics.jsonl record (step, losses, images/s, bad steps); a null loss (no good step) is left out."""
        if self._writer is None:
            return
        for key, tag in SCALARS.items():
            if record.get(key) is not None:
                self._writer.add_scalar(tag, record[key], record["step"])

    def grid(self, step: int, image: Image.Image) -> None:
        """The sample grid of `step`, the picture saved as samples/step_*.png."""
        if self._writer is not None:
            self._writer.add_image(GRID_TAG, np.asarray(image.convert("RGB")), step, dataformats="HWC")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
