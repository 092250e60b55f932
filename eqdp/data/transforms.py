"""Geometric test-time transforms (G-MedMNIST): exact D4, continuous rotations, scalings.

All transforms take and return uint8 images ``(N, C, H, W)`` so that transformed
splits go through the same evaluation path as the originals. D4 elements are
exact index permutations (rot90 and flips), so an equivariant D4 model must give
identical predictions on them. Continuous rotations interpolate bilinearly and
then zero everything outside the inscribed circle: without the mask, corners
that rotate out of view (and the black corners rotated in) would tell a model
the angle, and the accuracy change would not be about rotation alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

TRANSFORM_KINDS: tuple[str, ...] = ("d4", "rotation", "scale")
DEFAULT_ANGLE_STEP = 15
DEFAULT_SCALES: tuple[float, ...] = (0.9, 1.1)


def d4_transform(images: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """Horizontal flip (optional), then ``k`` quarter turns in the direction of torch.rot90."""
    if flip:
        images = torch.flip(images, dims=(-1,))
    return torch.rot90(images, k % 4, dims=(-2, -1))


def circular_mask(size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Bool ``(size, size)``: True for pixels whose centre lies in the inscribed circle."""
    coords = torch.arange(size, device=device, dtype=torch.float32) - (size - 1) / 2
    radius = torch.sqrt(coords[:, None] ** 2 + coords[None, :] ** 2)
    return radius <= size / 2


def _affine(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Resample uint8 images with a 2x3 affine map (output -> input, normalised coords)."""
    floats = images.float()
    grid = F.affine_grid(
        theta.to(floats.device).expand(len(images), 2, 3), list(floats.shape), align_corners=False
    )
    sampled = F.grid_sample(
        floats, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return sampled.round_().clamp_(0, 255).to(torch.uint8)


def rotate(images: torch.Tensor, angle: float) -> torch.Tensor:
    """Rotate by ``angle`` degrees (90 matches torch.rot90 with k=1), then mask the corners.

    Angle 0 returns the masked original, the reference for the other angles.
    """
    mask = circular_mask(images.shape[-1], images.device)
    if angle % 360 == 0:
        return images * mask
    radians = math.radians(angle)
    cos, sin = math.cos(radians), math.sin(radians)
    # affine_grid's x runs along the last axis and y along the second to last; this
    # sign makes a positive angle turn the image the way torch.rot90 does.
    theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=torch.float32)
    return _affine(images, theta[None]) * mask


def scale(images: torch.Tensor, factor: float) -> torch.Tensor:
    """Zoom about the centre by ``factor`` (> 1 crops, < 1 shrinks onto a black border)."""
    if factor <= 0:
        raise ValueError(f"scale factor must be > 0, got {factor}")
    theta = torch.tensor([[1 / factor, 0.0, 0.0], [0.0, 1 / factor, 0.0]], dtype=torch.float32)
    return _affine(images, theta[None])


@dataclass(frozen=True)
class GeometricTransform:
    name: str
    kind: str  # one of TRANSFORM_KINDS
    angle: float = 0.0  # degrees; for D4 the rotation part
    flip: bool = False
    factor: float = 1.0  # scale factor

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.kind == "d4":
            return d4_transform(images, round(self.angle / 90), self.flip)
        if self.kind == "rotation":
            return rotate(images, self.angle)
        return scale(images, self.factor)

    @property
    def reference(self) -> str:
        """The transform whose predictions the invariance error compares against."""
        return "rotate-0" if self.kind == "rotation" else "identity"

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "angle": self.angle,
            "flip": self.flip,
            "scale": self.factor,
        }


def d4_elements() -> list[GeometricTransform]:
    elements = []
    for flip in (False, True):
        for k in range(4):
            if not flip and k == 0:
                name = "identity"
            else:
                name = ("flip-" if flip else "") + f"rot{90 * k}"
            elements.append(GeometricTransform(name, "d4", angle=90.0 * k, flip=flip))
    return elements


def geometric_transforms(
    angle_step: float = DEFAULT_ANGLE_STEP, scales: tuple[float, ...] = DEFAULT_SCALES
) -> list[GeometricTransform]:
    """The G-MedMNIST set: the 8 D4 elements, rotations every ``angle_step``°, scalings."""
    transforms = d4_elements()
    steps = round(360 / angle_step)
    for index in range(steps):
        angle = index * 360 / steps
        transforms.append(GeometricTransform(f"rotate-{angle:g}", "rotation", angle=angle))
    for factor in scales:
        transforms.append(GeometricTransform(f"scale-{factor:g}", "scale", factor=factor))
    return transforms
