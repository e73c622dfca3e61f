"""Unlabelled generator inputs: a folder of images with no target, for distillation from a teacher.

Users often hold many more inputs than pairs (sketches without photos, maps without aerial views).
A teacher already maps them, so a student can learn the teacher's mapping on them as well: the
teacher's output is their target (pseudo-pairs) and its feature maps the distillation target.
:class:`WithUnlabelled` hands one such input to every training item, so each batch carries ``U``
beside its pairs and the schedule (steps per epoch) stays that of the labelled data.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ..errors import DataError
from . import transforms as T
from .images import OnError, SkipPolicy, list_images, load_rgb
from .paired import _Retrying


class ImageFolderDataset(_Retrying):
    """Every image directly inside ``folder`` as ``{"A", "A_path"}`` under ``transform``.

    Example:
        >>> ds = ImageFolderDataset("DATA/fonts-unlabelled", T.TransformConfig(load_size=64, crop_size=64))
        >>> ds[0]["A"].shape      # torch.Size([3, 64, 64])
    """

    def __init__(
        self,
        folder: str | Path,
        transform: T.TransformConfig | None = None,
        *,
        what: str = "unlabelled inputs",
        on_error: OnError = "raise",
    ) -> None:
        self.root = Path(folder)
        self.paths = list_images(self.root, what=what)
        self.transform = transform or T.TransformConfig()
        self.policy = SkipPolicy(on_error)

    def __len__(self) -> int:
        return len(self.paths)

    def _load(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        img = load_rgb(path)
        params = T.sample_params(self.transform, img.size, random)
        return {"A": T.to_tensor(T.apply(img, self.transform, params, path=path)), "A_path": str(path)}


class WithUnlabelled(Dataset):
    """``dataset``'s items, each with one unlabelled input ``U`` (and ``U_path``) drawn at random.

    The draw uses the global ``random``, which the training loop seeds per sample position, so a
    resumed run reads the same inputs as an uninterrupted one. The length is ``dataset``'s: an epoch
    is still one pass over the labelled data, however many unlabelled inputs there are.
    """

    def __init__(self, dataset: Dataset, unlabelled: Dataset) -> None:
        if len(unlabelled) == 0:  # type: ignore[arg-type]
            raise DataError("the unlabelled dataset is empty")
        self.dataset, self.unlabelled = dataset, unlabelled

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.dataset[index])
        if "U" in item:
            raise DataError("the labelled dataset already gives a 'U' entry")
        extra = self.unlabelled[random.randrange(len(self.unlabelled))]  # type: ignore[arg-type]
        item["U"], item["U_path"] = extra["A"], extra["A_path"]
        return item
