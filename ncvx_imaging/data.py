"""Test images from scikit-image as float tensors in [0, 1] (nothing is downloaded).

``load_image(name, size)`` returns a ``(size, size)`` (or ``(H, W)``) grayscale tensor: the
scikit-image picture converted to gray, centre-cropped to a square (or to ``crop`` = (top, left,
height, width) in the original pixels) and resized with anti-aliasing.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

__all__ = ["IMAGE_NAMES", "load_image"]

#: Names accepted by :func:`load_image` (attributes of ``skimage.data``).
IMAGE_NAMES = (
    "astronaut",
    "brick",
    "camera",
    "cat",
    "checkerboard",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "horse",
    "moon",
    "page",
    "rocket",
    "text",
)


def _loader(name: str) -> Callable[[], np.ndarray]:
    if name not in IMAGE_NAMES:
        raise ValueError(f"unknown test image {name!r}; choose from {IMAGE_NAMES}")
    try:
        import skimage.data
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("test images need scikit-image: pip install 'ncvx[imaging]'") from err
    return getattr(skimage.data, name)


def load_image(
    name: str = "camera",
    size: int | tuple[int, int] | None = 64,
    crop: tuple[int, int, int, int] | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """A grayscale scikit-image test picture as a ``(H, W)`` tensor with values in [0, 1].

    Args:
        name: one of :data:`IMAGE_NAMES`.
        size: output size (an int for square output; ``None`` keeps the cropped size).
        crop: ``(top, left, height, width)`` in original pixels; default the central square.
        dtype, device: of the returned tensor.
    """
    from skimage.color import rgb2gray, rgba2rgb
    from skimage.transform import resize
    from skimage.util import img_as_float

    img = img_as_float(_loader(name)())
    if img.ndim == 3:
        if img.shape[-1] == 4:
            img = rgba2rgb(img)
        img = rgb2gray(img)
    h, w = img.shape
    if crop is None:
        s = min(h, w)
        crop = ((h - s) // 2, (w - s) // 2, s, s)
    top, left, ch, cw = crop
    if top < 0 or left < 0 or ch < 1 or cw < 1 or top + ch > h or left + cw > w:
        raise ValueError(f"crop {crop} outside the {h}x{w} image {name!r}")
    img = img[top : top + ch, left : left + cw]
    if size is not None:
        out = (size, size) if isinstance(size, int) else tuple(size)
        if out != img.shape:
            img = resize(img, out, anti_aliasing=True, mode="reflect")
    t = torch.as_tensor(np.clip(img, 0.0, 1.0), dtype=dtype)
    return t.to(device) if device is not None else t
