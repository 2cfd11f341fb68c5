"""Offline data and tiny classifiers for attack tests, examples and benchmarks.

Data: scikit-learn's ``load_digits`` (1797 images, 8×8, values 0..16, shipped with the package;
nothing is downloaded), scaled to [0, 1], shape ``(N, 1, 8, 8)``, float64. The split is a fixed
seeded permutation. Models train in a few seconds on one CPU thread with fixed seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = [
    "DigitsCNN",
    "DigitsData",
    "DigitsMLP",
    "FacesMLP",
    "accuracy",
    "load_digits_data",
    "load_faces_data",
    "train_classifier",
]


@dataclass(frozen=True)
class DigitsData:
    """Train/test split of the scikit-learn digits: images ``(N, 1, 8, 8)`` in [0, 1], labels ``(N,)``."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_digits_data(
    test_fraction: float = 0.3, seed: int = 0, dtype: torch.dtype = torch.float64
) -> DigitsData:
    """Load scikit-learn's digits, scale to [0, 1] and split with a seeded permutation."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - the imaging extra installs it
        raise ImportError(
            "scikit-learn is needed for the digits data: pip install 'ncvx-torch[imaging]'"
        ) from err
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    x_np, y_np = load_digits(return_X_y=True)
    x = torch.tensor(x_np, dtype=dtype).reshape(-1, 1, 8, 8) / 16.0
    y = torch.tensor(y_np, dtype=torch.long)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    cut = len(y) - round(test_fraction * len(y))
    tr, te = perm[:cut], perm[cut:]
    return DigitsData(x[tr], y[tr], x[te], y[te])


def load_faces_data(
    test_fraction: float = 0.3, seed: int = 0, dtype: torch.dtype = torch.float64
) -> DigitsData:
    """scikit-image's ``lfw_subset``: 200 images 25×25 in [0, 1], label 1 = face, 0 = non-face.

    (The first 100 images are faces, the last 100 are not.) Shape ``(N, 1, 25, 25)``; split as in
    :func:`load_digits_data`.
    """
    try:
        from skimage.data import lfw_subset
    except ImportError as err:  # pragma: no cover - the imaging extra installs it
        raise ImportError(
            "scikit-image is needed for the faces data: pip install 'ncvx-torch[imaging]'"
        ) from err
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    x = torch.tensor(lfw_subset(), dtype=dtype).clamp(0.0, 1.0).reshape(-1, 1, 25, 25)
    y = (torch.arange(x.shape[0]) < 100).long()
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    cut = len(y) - round(test_fraction * len(y))
    tr, te = perm[:cut], perm[cut:]
    return DigitsData(x[tr], y[tr], x[te], y[te])


class FacesMLP(nn.Module):
    """``625 → hidden → 2`` ReLU MLP for 25×25 face / non-face images."""

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.fc1 = nn.Linear(625, hidden)
        self.out = nn.Linear(hidden, 2)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Hidden activations ``[(B, hidden)]``."""
        return [torch.relu(self.fc1(x.flatten(1)))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x)[-1])


class DigitsMLP(nn.Module):
    """``64 → hidden → hidden → 10`` ReLU MLP for 8×8 digits; ``features`` lists hidden layers."""

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, 10)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Hidden activations ``[(B, hidden), (B, hidden)]`` of a batch ``(B, 1, 8, 8)``."""
        h1 = torch.relu(self.fc1(x.flatten(1)))
        h2 = torch.relu(self.fc2(h1))
        return [h1, h2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x)[-1])


class DigitsCNN(nn.Module):
    """Two 3×3 conv layers (8 and 16 channels, the second with stride 2) and a linear head."""

    def __init__(self, channels: tuple[int, int] = (8, 16)) -> None:
        super().__init__()
        c1, c2 = channels
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1, stride=2)
        self.out = nn.Linear(c2 * 4 * 4, 10)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps ``[(B, c1, 8, 8), (B, c2, 4, 4)]`` of a batch ``(B, 1, 8, 8)``."""
        h1 = torch.relu(self.conv1(x))
        h2 = torch.relu(self.conv2(h1))
        return [h1, h2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x)[-1].flatten(1))


def train_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int = 30,
    lr: float = 3e-3,
    batch_size: int = 64,
    seed: int = 0,
    weight_decay: float = 0.0,
) -> nn.Module:
    """Train ``model`` with Adam and cross-entropy (seeded); return it in eval mode, float64.

    The parameters are re-initialised from ``seed`` first, so the result depends only on the
    architecture, the data and the arguments.

    Training runs in float32 on the data's device; the returned model is cast to float64 with
    ``requires_grad`` off on its parameters (an attack differentiates only w.r.t. the input).
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} examples but y has {y.shape[0]}")
    torch.manual_seed(seed)
    for m in model.modules():  # seeded initialisation, whatever the global RNG state was
        reset = getattr(m, "reset_parameters", None)
        if callable(reset):
            reset()
    model = model.float().to(x.device).train()
    for p in model.parameters():
        p.requires_grad_(True)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    xf = x.float()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=gen).to(x.device)
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            opt.zero_grad()
            nn.functional.cross_entropy(model(xf[idx]), y[idx]).backward()
            opt.step()
    model = model.double().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``x`` that ``model`` classifies as ``y``."""
    with torch.no_grad():
        return float((model(x.to(next(model.parameters()).dtype)).argmax(1) == y).double().mean())
