from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from eqdp.data.subsets import class_counts, strata, stratified_subset
from eqdp.data.transforms import (
    circular_mask,
    d4_elements,
    d4_transform,
    geometric_transforms,
    rotate,
    scale,
)
from eqdp.errors import EqdpError
from eqdp.metrics import accuracy, correct_fraction


def imbalanced_labels() -> torch.Tensor:
    labels = torch.tensor([0] * 100 + [1] * 50 + [2] * 10)
    return labels[torch.randperm(160, generator=torch.Generator().manual_seed(0))][:, None]


def test_subset_keeps_class_proportions() -> None:
    labels = imbalanced_labels()
    index = stratified_subset(labels, 0.1, seed=0)
    assert class_counts(labels[index], 3) == [10, 5, 1]
    assert index.tolist() == sorted(set(index.tolist()))


def test_subset_keeps_one_example_of_every_class() -> None:
    labels = imbalanced_labels()
    index = stratified_subset(labels, 0.02, seed=0)  # 3.2 examples: 2 + 1 + 1 after the floor
    assert all(count >= 1 for count in class_counts(labels[index], 3))


def test_subset_is_reproducible_per_seed_and_differs_across_seeds() -> None:
    labels = imbalanced_labels()
    first, again = stratified_subset(labels, 0.25, 3), stratified_subset(labels, 0.25, 3)
    other = stratified_subset(labels, 0.25, 4)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert torch.equal(stratified_subset(labels, 1.0, 5), torch.arange(160))


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.01, math.nan])
def test_fraction_outside_unit_interval_is_refused(fraction: float) -> None:
    with pytest.raises(EqdpError, match=r"fraction must be in \(0, 1\]"):
        stratified_subset(imbalanced_labels(), fraction, 0)


def test_fraction_too_small_for_one_example_per_class() -> None:
    with pytest.raises(EqdpError, match="fewer than one per class .3 classes"):
        stratified_subset(imbalanced_labels(), 0.01, 0)


def test_multi_label_strata_are_the_rarest_positive_label() -> None:
    labels = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 0, 1], [1, 1, 0]])
    assert strata(labels).tolist() == [0, 1, -1, 2, 1]
    assert class_counts(labels, 3) == [4, 2, 1]


def test_d4_elements_are_exact_and_distinct() -> None:
    image = torch.randint(0, 256, (1, 1, 6, 6), dtype=torch.uint8)
    assert torch.equal(d4_transform(image, 1, False), torch.rot90(image, 1, (2, 3)))
    assert torch.equal(d4_transform(image, 0, True), image.flip(-1))
    outputs = [t(image) for t in d4_elements()]
    assert len({o.numpy().tobytes() for o in outputs}) == 8
    assert torch.equal(outputs[0], image)
    for transform in d4_elements():
        assert sorted(transform(image).flatten().tolist()) == sorted(image.flatten().tolist())


def test_rotation_masks_corners_and_matches_rot90_inside_the_circle() -> None:
    image = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    mask = circular_mask(28)
    assert not mask[0, 0] and not mask[-1, -1] and mask[14, 14] and mask[0, 13]
    for angle in (0, 30, 90):
        rotated = rotate(image, angle)
        assert rotated.dtype == torch.uint8
        assert (rotated[..., ~mask] == 0).all()
    quarter = rotate(image, 90).int()
    exact = (torch.rot90(image, 1, (2, 3)) * mask).int()
    assert (quarter - exact).abs().max() <= 1
    assert torch.equal(rotate(image, 0), image * mask)


def test_scale_one_is_identity_and_shrinking_leaves_a_black_border() -> None:
    image = torch.full((1, 1, 28, 28), 200, dtype=torch.uint8)
    assert torch.equal(scale(image, 1.0), image)
    assert scale(image, 0.5)[0, 0, 0, 0] == 0 and scale(image, 0.5)[0, 0, 14, 14] == 200


def test_default_transform_set() -> None:
    transforms = geometric_transforms()
    kinds = [t.kind for t in transforms]
    assert kinds.count("d4") == 8 and kinds.count("rotation") == 24 and kinds.count("scale") == 2
    assert len({t.name for t in transforms}) == len(transforms)


@pytest.mark.parametrize(
    ("task", "y_true", "y_score"),
    [
        ("binary-class", [[0], [1], [1]], [[0.7, 0.3], [0.2, 0.8], [0.6, 0.4]]),
        ("multi-class", [[2], [0], [1]], [[0.1, 0.2, 0.7], [0.3, 0.4, 0.3], [0.2, 0.5, 0.3]]),
        ("multi-label, binary-class", [[1, 0], [0, 0]], [[0.9, 0.6], [0.1, 0.2]]),
    ],
)
def test_correct_fraction_agrees_with_accuracy(task: str, y_true: list, y_score: list) -> None:
    y_true_np, y_score_np = np.array(y_true), np.array(y_score)
    per_example = correct_fraction(task, y_true_np, y_score_np)
    assert per_example.shape == (len(y_true),)
    assert per_example.mean() == pytest.approx(accuracy(task, y_true_np, y_score_np))
