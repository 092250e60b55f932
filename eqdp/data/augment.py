"""Training-time augmentation through MONAI transforms.

Off by default (the MedMNIST v2 protocol trains without augmentation). ``d4``
draws a uniformly random element of the dihedral group D4 (rot90 x flip) per
image, the symmetry that equivariant models have built in.
"""

from __future__ import annotations

import torch

from eqdp.config.train import AUGMENTATIONS
from eqdp.errors import unknown_choice


class BatchAugmenter:
    """Applies a MONAI array transform image by image to a (N, C, H, W) batch."""

    def __init__(self, name: str, seed: int) -> None:
        if name not in AUGMENTATIONS:
            raise unknown_choice("augmentation", name, AUGMENTATIONS)
        self.name = name
        self.transform = None
        if name == "none":
            return  # MONAI's import takes seconds; without augmentation it is not needed
        from monai.transforms import Compose, RandFlip, RandRotate90

        # prob 3/4 over k in {1,2,3} plus identity gives each rotation 1/4.
        self.transform = Compose(
            [
                RandRotate90(prob=0.75, max_k=3, spatial_axes=(0, 1)),
                RandFlip(prob=0.5, spatial_axis=1),
            ]
        )
        self.transform.set_random_state(seed=seed)

    @property
    def active(self) -> bool:
        return self.name != "none"

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.transform is None:
            return images
        return torch.stack([torch.as_tensor(self.transform(image)) for image in images])
