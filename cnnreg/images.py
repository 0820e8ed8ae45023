"""Reading one image file: the decoder behind training, evaluation, prediction and ``cnnreg data
show``, and the pixel limit every image is held to.

:func:`read_image` is the only place cnnreg turns an image file into pixels (the tf.data
pipeline calls it through ``tf.numpy_function``), so a file gives the same pixels wherever it is
read:

* any format Pillow opens; an animated GIF gives its first frame (the folder dataset itself
  takes jpg, png, bmp and gif);
* 16-bit samples (16-bit PNGs) keep their high byte, ``value >> 8``: 65535 → 255, a 16-bit
  mid-gray 32896 → 128.  That is what Pillow does to 16-bit colour PNGs and what TensorFlow's
  ``decode_image`` did in training before, within one level of ``value / 257``;
* gray, palette, gray+alpha, RGBA and CMYK are converted by Pillow to gray or RGB (alpha is
  dropped, RGB becomes gray by the ITU-R 601 luma weights);
* the EXIF orientation tag is not applied (pixels are used as stored).

The pixel limit (:func:`max_pixels`) is checked from the header, before a pixel is decoded; it
replaces Pillow's own decompression-bomb check, so no ``DecompressionBombWarning`` reaches the
user.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from cnnreg.errors import CnnregError

__all__ = ["MAX_PIXELS_ENV", "DEFAULT_MAX_PIXELS", "ImageError", "max_pixels", "too_large", "open_image", "read_image"]

MAX_PIXELS_ENV = "CNNREG_MAX_IMAGE_PIXELS"
#: Pillow's own default (a 9459x9459 image, 256 MiB as 8-bit RGB): every image Pillow accepted
#: without a warning is still read, and those it only warned about are now refused, in words.
DEFAULT_MAX_PIXELS = 89_478_485

#: Pillow modes that hold 16-bit (or wider integer) gray samples.
_WIDE_GRAY = {"I", "I;16", "I;16B", "I;16L", "I;16N"}


class ImageError(CnnregError):
    """An image file that cannot be used; ``reason`` is the short form for lists of skipped files."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def max_pixels() -> int:
    """The pixel limit: ``$CNNREG_MAX_IMAGE_PIXELS`` (a whole number > 0), else :data:`DEFAULT_MAX_PIXELS`."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise CnnregError(f"{MAX_PIXELS_ENV} must be a whole number of pixels > 0 (got '{text}')")
    return value


def _millions(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} M" if pixels >= 100_000 else f"{pixels:,}"


def too_large(size: tuple[int, int], limit: int | None = None) -> str | None:
    """``"HxW = N M pixels, larger than the limit ..."`` for a Pillow ``size`` (width, height)
    over the limit, else None."""
    limit = max_pixels() if limit is None else limit
    width, height = size
    pixels = width * height
    if pixels <= limit:
        return None
    return (f"{height}x{width} = {_millions(pixels)} pixels, larger than the limit of {_millions(limit)} pixels "
            f"set by {MAX_PIXELS_ENV}")


def _pil():
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # our limit replaces Pillow's warning / error (see the module docstring)
    return Image


def open_image(path: Any, limit: int | None = None):
    """The file opened by Pillow (header read, no pixel decoded), after the pixel limit check.

    Raises :class:`ImageError` (a one-line :class:`~cnnreg.errors.CnnregError`) for a missing,
    unreadable, unrecognised or too large file.  Use it as a context manager.
    """
    from PIL import UnidentifiedImageError

    if isinstance(path, (str, os.PathLike)):
        _check_regular(path)  # a FIFO or a device named as an image would block or never end
    Image = _pil()
    try:
        image = Image.open(path)
    except FileNotFoundError:
        raise ImageError(f"image {path} does not exist", "does not exist") from None
    except UnidentifiedImageError:
        raise ImageError(f"cannot read image {path}: not an image Pillow knows", "not an image") from None
    except OSError as exc:
        if exc.errno is not None:  # permissions, a folder, a vanished file...
            raise ImageError(f"cannot read image {path}: {exc.strerror}", f"unreadable: {exc.strerror}") from None
        reason = "truncated" if "truncated" in str(exc).lower() else "corrupt"
        raise ImageError(f"cannot read image {path}: {exc}", reason) from None
    except Exception as exc:  # Pillow raises many kinds on garbage headers
        raise ImageError(f"cannot read image {path}: {exc}", "corrupt") from None
    problem = too_large(image.size, limit)
    if problem is not None:
        image.close()
        raise ImageError(f"image {path} is {problem}", f"too large: {problem}")
    return image


def _check_regular(path: Any) -> None:
    import stat

    from cnnreg.files import irregular

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # Pillow says what is wrong (missing, unreadable) in its own words
    if stat.S_ISDIR(mode):
        raise ImageError(f"cannot read image {path}: Is a directory", "unreadable: Is a directory")
    kind = irregular(mode)
    if kind:
        raise ImageError(f"image {path} is {kind}, not a regular file; refused", "not a regular file")


def read_image(path: Any, channels: int, limit: int | None = None) -> np.ndarray:
    """An image file → uint8 (H, W, ``channels``), ``channels`` 1 (gray) or 3 (RGB).

    The one decoder of cnnreg (see the module docstring); raises :class:`ImageError` with a
    one-line message for a file that is missing, not an image, damaged or over the pixel limit.
    """
    with open_image(path, limit) as image:
        try:
            if image.mode in _WIDE_GRAY:
                # Pillow's convert("L") would clip 16-bit samples to 255; keep the high byte instead
                wide = np.asarray(image).astype(np.int64, copy=False)
                pixels = (np.clip(wide, 0, 65535) >> 8).astype(np.uint8)[..., None]
                if channels == 3:
                    pixels = np.repeat(pixels, 3, axis=-1)
            else:
                target = "L" if channels == 1 else "RGB"
                pixels = np.asarray(image if image.mode == target else image.convert(target))
        except Exception as exc:  # truncated or garbled pixel data: Pillow raises OSError and others
            text = str(exc) or type(exc).__name__
            reason = "truncated" if "truncated" in text.lower() else "does not decode"
            raise ImageError(f"cannot read image {path}: {text}", reason) from None
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    return np.ascontiguousarray(pixels, dtype=np.uint8)
