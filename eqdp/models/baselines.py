"""Non-equivariant baselines: small CNN, ResNet-18/50 (CIFAR stem), WRN-16-4, EfficientNet, ViT."""

from __future__ import annotations

import torch
from torch import nn

from eqdp.models.registry import register_model


def norm_layer(channels: int, dp: bool) -> nn.Module:
    """BatchNorm normally; GroupNorm (per-sample statistics) for DP-SGD."""
    if dp:
        return nn.GroupNorm(min(32, channels // 4) if channels >= 8 else 1, channels)
    return nn.BatchNorm2d(channels)


def conv_block(in_channels: int, out_channels: int, dp: bool) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        norm_layer(out_channels, dp),
        nn.ReLU(),
    )


@register_model("cnn", description="small plain CNN: 3 stages (32-64-128 channels)")
def small_cnn(
    in_channels: int, num_classes: int, *, dp: bool = False, image_size: int = 28, width: int = 32
) -> nn.Module:
    return nn.Sequential(
        conv_block(in_channels, width, dp),
        conv_block(width, width, dp),
        nn.MaxPool2d(2),
        conv_block(width, 2 * width, dp),
        conv_block(2 * width, 2 * width, dp),
        nn.MaxPool2d(2),
        conv_block(2 * width, 4 * width, dp),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4 * width, num_classes),
    )


def projection_shortcut(in_channels: int, out_channels: int, stride: int, dp: bool) -> nn.Module:
    """A ResNet block's shortcut: identity, or a strided 1x1 conv and norm when shapes change."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
        norm_layer(out_channels, dp),
    )


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride: int, dp: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.norm1 = norm_layer(out_channels, dp)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.norm2 = norm_layer(out_channels, dp)
        self.relu = nn.ReLU()
        self.shortcut = projection_shortcut(in_channels, out_channels, stride, dp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


@register_model("resnet18", description="ResNet-18, CIFAR-style stem (MedMNIST v2 baseline)")
def resnet18(
    in_channels: int, num_classes: int, *, dp: bool = False, image_size: int = 28, width: int = 64
) -> nn.Module:
    return CifarResNet(in_channels, num_classes, BasicBlock, (2, 2, 2, 2), dp=dp, width=width)


class Bottleneck(nn.Module):
    """ResNet-50's block (1x1, 3x3 with the stride, 1x1 to 4x the width), torchvision v1.5."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int, dp: bool) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.norm1 = norm_layer(width, dp)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.norm2 = norm_layer(width, dp)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.norm3 = norm_layer(out_channels, dp)
        self.relu = nn.ReLU()
        self.shortcut = projection_shortcut(in_channels, out_channels, stride, dp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.relu(self.norm2(self.conv2(out)))
        out = self.norm3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet with the CIFAR stem (3x3 conv, no max-pool) MedMNIST v2 uses at 28px.

    ``block`` is :class:`BasicBlock` (ResNet-18: depths 2-2-2-2) or :class:`Bottleneck`
    (ResNet-50: 3-4-6-3); stage i has ``width * 2**i`` channels (times the block's
    expansion) and stages 2-4 halve the resolution in their first block.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        block: type[BasicBlock | Bottleneck],
        depths: tuple[int, ...],
        dp: bool = False,
        width: int = 64,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
            norm_layer(width, dp),
            nn.ReLU(),
        )
        blocks: list[nn.Module] = []
        channels = width
        for stage, depth in enumerate(depths):
            for index in range(depth):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(block(channels, width * 2**stage, stride, dp))
                channels = width * 2**stage * block.expansion
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


@register_model("resnet50", description="ResNet-50, CIFAR-style stem (MedMNIST v2 baseline)")
def resnet50(
    in_channels: int, num_classes: int, *, dp: bool = False, image_size: int = 28, width: int = 64
) -> nn.Module:
    return CifarResNet(in_channels, num_classes, Bottleneck, (3, 4, 6, 3), dp=dp, width=width)


class PreActBlock(nn.Module):
    """Wide-ResNet block: norm, ReLU, 3x3 conv (with the stride), norm, ReLU, 3x3 conv."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.norm2 = nn.GroupNorm(groups, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = self.relu(self.norm1(x))
        out = self.conv2(self.relu(self.norm2(self.conv1(activated))))
        return out + self.shortcut(activated)


class WideResNet(nn.Module):
    """WRN-d-k (Zagoruyko & Komodakis 2016) with GroupNorm, as De et al. (2022) train under DP.

    De et al. also standardise the convolution weights; eqdp does not (Opacus has no
    per-sample rule for weight-standardised convolutions), so this is their network
    without weight standardisation.
    """

    def __init__(
        self, in_channels: int, num_classes: int, depth: int, widen: int, groups: int
    ) -> None:
        super().__init__()
        blocks_per_stage = (depth - 4) // 6
        widths = (16 * widen, 32 * widen, 64 * widen)
        self.stem = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        blocks: list[nn.Module] = []
        channels = 16
        for stage, out_channels in enumerate(widths):
            for index in range(blocks_per_stage):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(PreActBlock(channels, out_channels, stride, groups))
                channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.norm = nn.GroupNorm(groups, channels)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.norm(self.blocks(self.stem(x))))
        return self.fc(torch.flatten(self.pool(out), 1))


@register_model(
    "wrn-16-4",
    description="Wide-ResNet-16-4 with GroupNorm (16 groups): De et al.'s from-scratch DP "
    "baseline, without weight standardisation",
)
def wrn_16_4(
    in_channels: int,
    num_classes: int,
    *,
    dp: bool = False,
    image_size: int = 28,
    groups: int = 16,
) -> nn.Module:
    # GroupNorm is per-sample already, so the DP variant is the same network.
    return WideResNet(in_channels, num_classes, depth=16, widen=4, groups=groups)


# The EfficientNet-B0 stages (MBConv repeats, kernel, stride, expansion, channels, SE ratio).
EFFICIENTNET_B0_BLOCKS: list[str] = [
    "r1_k3_s11_e1_i32_o16_se0.25",
    "r2_k3_s22_e6_i16_o24_se0.25",
    "r2_k5_s22_e6_i24_o40_se0.25",
    "r3_k3_s22_e6_i40_o80_se0.25",
    "r3_k5_s11_e6_i80_o112_se0.25",
    "r4_k5_s22_e6_i112_o192_se0.25",
    "r1_k3_s11_e6_i192_o320_se0.25",
]


@register_model("efficientnet-b0", description="MONAI EfficientNet-B0, trained from scratch")
def efficientnet_b0(
    in_channels: int, num_classes: int, *, dp: bool = False, image_size: int = 28
) -> nn.Module:
    from monai.networks.nets import EfficientNet  # MONAI's import takes seconds

    # EfficientNetBN fixes image_size=224, which sets "same" padding wrongly for 28px
    # inputs, so the B0 configuration is built directly at the real size.
    # PyTorch's BatchNorm momentum 0.1, not MONAI's 0.01 (TF weights' convention): with
    # the few hundred steps of a small dataset, 0.01 leaves the running statistics near
    # their initial values and evaluation collapses to a constant prediction.
    norm = ("group", {"num_groups": 8}) if dp else ("batch", {"eps": 1e-3, "momentum": 0.1})
    model = EfficientNet(
        EFFICIENTNET_B0_BLOCKS,
        spatial_dims=2,
        in_channels=in_channels,
        num_classes=num_classes,
        width_coefficient=1.0,
        depth_coefficient=1.0,
        dropout_rate=0.2,
        image_size=image_size,
        norm=norm,
        drop_connect_rate=0.2,
    )
    if dp:
        # Opacus' backward hooks forbid in-place activations on hooked outputs.
        for module in model.modules():
            if hasattr(module, "inplace"):
                module.inplace = False
    return model


class ViTClassifier(nn.Module):
    """MONAI's ViT returns (logits, hidden states); keep the logits."""

    def __init__(self, vit: nn.Module) -> None:
        super().__init__()
        self.vit = vit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vit(x)[0]


@register_model(
    "vit",
    description="MONAI ViT for 28px: 4x4 patches, 6 layers, width 192, 3 heads",
    dp_refusal="MONAI's ViT keeps its position embeddings and class token on container "
    "modules that Opacus has no per-sample gradient rule for",
)
def vit(
    in_channels: int,
    num_classes: int,
    *,
    dp: bool = False,
    image_size: int = 28,
    patch_size: int = 4,
    hidden_size: int = 192,
    num_layers: int = 6,
    num_heads: int = 3,
) -> nn.Module:
    from monai.networks.nets import ViT

    return ViTClassifier(
        ViT(
            in_channels=in_channels,
            img_size=image_size,
            patch_size=patch_size,
            hidden_size=hidden_size,
            mlp_dim=2 * hidden_size,
            num_layers=num_layers,
            num_heads=num_heads,
            classification=True,
            num_classes=num_classes,
            spatial_dims=2,
            post_activation=None,
        )
    )
