"""Generator networks for deep image priors (DIP): ``x = G_theta(z)`` with a fixed random input ``z``.

Stable API (other subpackages import it):

- :class:`SkipEncoderDecoder` — the U-Net-like encoder-decoder with skip connections of the DIP
  paper (Ulyanov et al., IJCV 2020), any depth/width, any input size (no divisibility needed).
- :func:`small_skip` — a few thousand parameters, usable on a CPU at 64²-128².
- :func:`standard_skip` — the published 5-level, 128-channel configuration (GPU).
- :class:`KernelMLP` — a fully connected generator of a blur kernel on the simplex (softmax
  output), as used for the kernel branch of double-DIP blind deblurring.
- :func:`make_input` — the fixed random input ``z`` of shape ``(1, C, H, W)``.
- Output activations are selected by name per output channel, e.g. ``"sigmoid"`` for images in
  [0, 1], ``"softplus"`` for nonnegative amplitudes, ``"phase"`` for ``pi * tanh`` phases:
  ``out_activation=("softplus", "phase")`` for a two-channel amplitude/phase object.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "KernelMLP",
    "SkipEncoderDecoder",
    "count_parameters",
    "make_input",
    "small_skip",
    "standard_skip",
]

#: Output activations by name (applied elementwise to one output channel).
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "none": lambda t: t,
    "identity": lambda t: t,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "softplus": F.softplus,
    "abs": torch.abs,
    "exp": torch.exp,
    "phase": lambda t: math.pi * torch.tanh(t),
}


def _check_activation(name: str) -> str:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown output activation {name!r}; choose from {sorted(ACTIVATIONS)}")
    return name


def _conv(cin: int, cout: int, k: int, stride: int = 1, pad_mode: str = "reflect") -> nn.Module:
    """Convolution with 'same'-style padding (reflection by default, as in DIP)."""
    pad = (k - 1) // 2
    layers: list[nn.Module] = []
    if pad > 0 and pad_mode == "reflect":
        layers.append(nn.ReflectionPad2d(pad))
        pad = 0
    layers.append(nn.Conv2d(cin, cout, k, stride=stride, padding=pad, bias=True))
    return nn.Sequential(*layers) if len(layers) > 1 else layers[0]


def _block(cin: int, cout: int, k: int, stride: int, norm: bool, pad_mode: str) -> nn.Sequential:
    layers: list[nn.Module] = [_conv(cin, cout, k, stride, pad_mode)]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


class SkipEncoderDecoder(nn.Module):
    """Encoder-decoder with skip connections mapping ``(B, in_channels, H, W)`` to
    ``(B, out_channels, H, W)``.

    Level ``i`` of the encoder halves the resolution (strided convolution) and has
    ``channels_down[i]`` channels; the decoder upsamples back, concatenating a 1x1-convolution skip
    branch with ``channels_skip[i]`` channels (0 disables it). Odd sizes are fine: upsampling goes to
    the exact size of the matching encoder level.

    Args:
        in_channels: channels of the input ``z``.
        out_channels: channels of the output image.
        channels_down, channels_up, channels_skip: per-level widths (same length = depth).
        kernel_size: spatial size of the main convolutions.
        upsample: ``"bilinear"`` or ``"nearest"``.
        out_activation: one name from :data:`ACTIVATIONS` for all output channels, or one per
            output channel.
        norm: use batch normalisation (statistics of the current input; keep the module in train
            mode, as DIP does: with a single fixed input this is a deterministic function).
        pad_mode: ``"reflect"`` or ``"zeros"``.
    """

    def __init__(
        self,
        in_channels: int = 8,
        out_channels: int = 1,
        channels_down: Sequence[int] = (16, 32, 64),
        channels_up: Sequence[int] = (16, 32, 64),
        channels_skip: Sequence[int] = (4, 4, 4),
        kernel_size: int = 3,
        upsample: str = "bilinear",
        out_activation: str | Sequence[str] = "sigmoid",
        norm: bool = True,
        pad_mode: str = "reflect",
    ) -> None:
        super().__init__()
        depth = len(channels_down)
        if depth == 0 or len(channels_up) != depth or len(channels_skip) != depth:
            raise ValueError(
                "channels_down, channels_up and channels_skip must be non-empty and of equal "
                f"length, got {len(channels_down)}, {len(channels_up)}, {len(channels_skip)}"
            )
        if upsample not in ("bilinear", "nearest"):
            raise ValueError(f"upsample must be 'bilinear' or 'nearest', got {upsample!r}")
        if pad_mode not in ("reflect", "zeros"):
            raise ValueError(f"pad_mode must be 'reflect' or 'zeros', got {pad_mode!r}")
        if isinstance(out_activation, str):
            acts = [_check_activation(out_activation)] * out_channels
        else:
            acts = [_check_activation(a) for a in out_activation]
            if len(acts) != out_channels:
                raise ValueError(
                    f"out_activation lists {len(acts)} names for {out_channels} output channels"
                )
        self.out_activation = tuple(acts)
        self.upsample = upsample
        k = kernel_size
        self.down = nn.ModuleList()
        self.skip = nn.ModuleList()
        self.up = nn.ModuleList()
        cin = in_channels
        for i in range(depth):
            self.skip.append(
                _block(cin, channels_skip[i], 1, 1, norm, pad_mode)
                if channels_skip[i] > 0
                else nn.Identity()
            )
            self.down.append(
                nn.Sequential(
                    _block(cin, channels_down[i], k, 2, norm, pad_mode),
                    _block(channels_down[i], channels_down[i], k, 1, norm, pad_mode),
                )
            )
            cin = channels_down[i]
        for i in range(depth):
            deeper = channels_up[i + 1] if i + 1 < depth else channels_down[depth - 1]
            cat = deeper + channels_skip[i]
            layers: list[nn.Module] = [nn.BatchNorm2d(cat)] if norm else []
            layers += [
                _block(cat, channels_up[i], k, 1, norm, pad_mode),
                _block(channels_up[i], channels_up[i], 1, 1, norm, pad_mode),
            ]
            self.up.append(nn.Sequential(*layers))
        self.head = nn.Conv2d(channels_up[0], out_channels, 1)
        self._has_skip = [c > 0 for c in channels_skip]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 4:
            raise ValueError(f"input must be (B, C, H, W), got shape {tuple(z.shape)}")
        skips: list[torch.Tensor | None] = []
        sizes: list[tuple[int, int]] = []
        h = z
        for i, down in enumerate(self.down):
            sizes.append((h.shape[-2], h.shape[-1]))
            skips.append(self.skip[i](h) if self._has_skip[i] else None)
            h = down(h)
        for i in reversed(range(len(self.up))):
            kw = {"align_corners": False} if self.upsample == "bilinear" else {}
            h = F.interpolate(h, size=sizes[i], mode=self.upsample, **kw)
            s = skips[i]
            if s is not None:
                h = torch.cat([h, s], dim=1)
            h = self.up[i](h)
        out = self.head(h)
        acts = self.out_activation
        if all(a == acts[0] for a in acts):
            return ACTIVATIONS[acts[0]](out)
        return torch.cat([ACTIVATIONS[a](out[:, c : c + 1]) for c, a in enumerate(acts)], dim=1)


def small_skip(
    in_channels: int = 8,
    out_channels: int = 1,
    out_activation: str | Sequence[str] = "sigmoid",
    width: int = 16,
    depth: int = 3,
    skip: int = 4,
) -> SkipEncoderDecoder:
    """A CPU-sized DIP generator (``width`` channels at every level, ``depth`` levels)."""
    return SkipEncoderDecoder(
        in_channels,
        out_channels,
        channels_down=(width,) * depth,
        channels_up=(width,) * depth,
        channels_skip=(skip,) * depth,
        out_activation=out_activation,
    )


def standard_skip(
    in_channels: int = 32,
    out_channels: int = 1,
    out_activation: str | Sequence[str] = "sigmoid",
) -> SkipEncoderDecoder:
    """The DIP paper's configuration: 5 levels of 128 channels, 4-channel skips (GPU-sized)."""
    return SkipEncoderDecoder(
        in_channels,
        out_channels,
        channels_down=(128,) * 5,
        channels_up=(128,) * 5,
        channels_skip=(4,) * 5,
        out_activation=out_activation,
    )


class KernelMLP(nn.Module):
    """Fully connected generator of a ``(kh, kw)`` blur kernel on the probability simplex.

    ``forward(z)`` maps ``z`` of shape ``(in_features,)`` to a kernel with nonnegative entries
    summing to one (softmax output).
    """

    def __init__(self, kernel_shape: tuple[int, int], in_features: int = 200, hidden: int = 1000):
        super().__init__()
        kh, kw = kernel_shape
        if kh < 1 or kw < 1:
            raise ValueError(f"kernel_shape must be positive, got {kernel_shape}")
        self.kernel_shape = (int(kh), int(kw))
        self.in_features = in_features
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU6(), nn.Linear(hidden, kh * kw)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.shape[-1] != self.in_features:
            raise ValueError(f"input must end with {self.in_features} features, got {z.shape}")
        logits = self.net(z.reshape(-1))
        return torch.softmax(logits, dim=0).reshape(self.kernel_shape)


def make_input(
    channels: int,
    size: tuple[int, int],
    scale: float = 0.1,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The fixed DIP input: ``scale * U[0, 1)`` noise of shape ``(1, channels, H, W)``."""
    gen = torch.Generator().manual_seed(seed)
    z = scale * torch.rand((1, channels, *size), generator=gen, dtype=dtype)
    return z.to(device) if device is not None else z


def count_parameters(module: nn.Module) -> int:
    """Number of trainable scalars (the variable count ncvx will see)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
