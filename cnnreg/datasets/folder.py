"""``folder:PATH`` — a folder of your own images, one sub-folder per class.

    flowers/daisy/*.jpg  flowers/roses/*.png ...            seeded split, 75/15/10 by default
    flowers/train/daisy/...  flowers/val/...  flowers/test/...   the given split (a missing
                                                                   validation or test split is
                                                                   carved from train)

Images are jpg, png, bmp or gif (first frame), found recursively in each class folder; symbolic
links are followed, but each folder is walked and each real file listed once (a link loop ends,
a file reached twice is skipped as the same file).  Listing reads only each file's header and
tail (Pillow, no TensorFlow): empty files, files that are not images, truncated files and images
over the pixel limit (:mod:`cnnreg.images`) are skipped and counted; files that still fail to
decode later are skipped by the input pipeline.  Grayscale, palette and RGBA images are
converted to the channels the model expects.
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from cnnreg.errors import CnnregError, ParameterError
from cnnreg.spec import Range

__all__ = ["IMAGE_EXTENSIONS", "FolderScan", "scan", "check", "folder"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
#: Sub-folder names that mark a given split (case-insensitive).
SPLIT_FOLDERS = {"train": ("train", "training"), "validation": ("val", "valid", "validation"), "test": ("test", "testing")}

Fraction = Annotated[float, Range(0, 1, min_inclusive=True, max_inclusive=False)]
Resize = Literal["stretch", "crop", "pad"]

_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F", "La"}


@dataclass
class FolderScan:
    """What is on disk: classes, the files of each given split, what was skipped and why."""

    root: Path
    class_names: list[str]
    #: split name ("all" when the folder has no train/ val/ test/ sub-folders) → (files, labels)
    parts: dict[str, tuple[list[str], list[int]]]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    sizes: Counter = field(default_factory=Counter)
    gray: int = 0
    color: int = 0

    @property
    def channels(self) -> int:
        return 1 if self.gray and not self.color else 3

    @property
    def shape(self) -> tuple[int | None, int | None, int]:
        if len(self.sizes) == 1:
            (height, width), = self.sizes
            return (height, width, self.channels)
        return (None, None, self.channels)

    def skipped_lines(self) -> list[str]:
        return [f"{path} ({reason})" for path, reason in self.skipped]


def check(name: str, params: dict) -> None:
    """Resolve-time check (no file is opened): the folder exists and has at least 2 classes."""
    _layout(params["path"])


def _check_path(path: str) -> None:
    target = Path(os.path.expanduser(str(path)))
    if not target.exists():
        raise ParameterError(f"dataset folder {path} does not exist")
    if not target.is_dir():
        raise ParameterError(f"dataset path {path} is not a folder (give a folder with one sub-folder per class)")


def _subdirs(path: Path) -> list[Path]:
    try:
        return sorted((p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
    except OSError as exc:
        raise CnnregError(f"cannot list folder {path}: {exc.strerror or exc}") from None


def _identity(path: Path | str) -> tuple[int, int] | None:
    """(device, inode) of what ``path`` points to; None when it cannot be stat'ed (a broken link)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _images_in(path: Path, visited: set[tuple[int, int]]) -> list[Path]:
    """Image files under ``path``, links followed; a folder in ``visited`` (walked already, or
    another class folder) is not entered, so a link loop (``a/loop -> a``) ends."""
    found = []
    for folder, dirs, files in os.walk(path, followlinks=True):
        keep = []
        for d in sorted(d for d in dirs if not d.startswith(".")):
            key = _identity(os.path.join(folder, d))
            if key is not None and key not in visited:
                visited.add(key)
                keep.append(d)
        dirs[:] = keep
        found.extend(Path(folder) / f for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith("."))
    return found


def _inspect(path: Path, limit: int) -> tuple[str | None, tuple[int, int] | None, str | None]:
    """(problem, (height, width), Pillow mode) from the header and the last bytes of the file."""
    from cnnreg.images import ImageError, open_image

    try:
        size = path.stat().st_size
        if size == 0:
            return "empty file", None, None
        with open_image(path, limit) as image:  # the pixel limit, from the header
            fmt, mode, (width, height) = image.format, image.mode, image.size
        with open(path, "rb") as handle:
            handle.seek(max(0, size - 1024))
            tail = handle.read()
            if fmt == "BMP":
                handle.seek(2)
                declared = int.from_bytes(handle.read(4), "little")
                if declared > size:
                    return "truncated", None, None
    except ImageError as exc:  # missing, not an image, damaged header, over the pixel limit
        return exc.reason, None, None
    except OSError as exc:
        if exc.errno is not None:  # permissions, a vanished file...
            return f"unreadable: {exc.strerror}", None, None
        return ("truncated" if "truncated" in str(exc).lower() else "corrupt"), None, None
    except Exception:  # Pillow raises many kinds on garbage headers
        return "corrupt", None, None
    complete = {"JPEG": b"\xff\xd9" in tail, "PNG": b"IEND" in tail[-64:], "GIF": b";" in tail[-16:]}.get(fmt, True)
    if not complete and not _decodes(path):  # no end marker: truncated, unless data follows the
        return "truncated", None, None      # image (phones append motion-photo videos to JPEGs)
    if fmt not in ("JPEG", "PNG", "GIF", "BMP", "MPO"):
        return f"unsupported format {fmt}", None, None
    return None, (height, width), mode


def _decodes(path: Path) -> bool:
    """Whether Pillow decodes the whole image (JPEGs at 1/8 scale: the entropy-coded data is
    still read to its end, which is what a truncated file lacks)."""
    from cnnreg.images import open_image

    try:
        with open_image(path) as image:
            image.draft("RGB", (max(1, image.size[0] // 8), max(1, image.size[1] // 8)))
            image.load()
        return True
    except Exception:
        return False


def _layout(path: str | Path) -> tuple[Path, dict[str, list[Path]], list[str]]:
    """(root, split → class folders, class names): the folder structure, no file opened."""
    root = Path(os.path.expanduser(str(path)))
    _check_path(str(path))
    top = _subdirs(root)
    split_dirs: dict[str, Path] = {}
    for split, names in SPLIT_FOLDERS.items():
        match = next((d for d in top if d.name.lower() in names), None)
        if match is not None:
            split_dirs[split] = match
    if split_dirs and "train" not in split_dirs:
        given = ", ".join(d.name for d in split_dirs.values())
        raise CnnregError(f"folder {root} has {given}/ but no train/ sub-folder")
    sources = {split: _subdirs(d) for split, d in split_dirs.items()} if split_dirs else {"all": top}
    class_names = sorted({d.name for dirs in sources.values() for d in dirs})
    if not class_names:
        raise CnnregError(
            f"folder {root} has no class sub-folders (expected one folder of images per class, e.g. {root}/cats/*.jpg)"
        )
    if len(class_names) < 2:
        raise CnnregError(f"folder {root} has only 1 class ({class_names[0]}); at least 2 class folders are needed")
    return root, sources, class_names


def scan(path: str | Path) -> FolderScan:
    """List the classes and images under ``path``; check each file's header and tail.

    Each real file is listed once: a second path to it (a link, a linked folder) is skipped as
    ``same file as ...``, so no image is in two splits or two classes.
    """
    from cnnreg.images import max_pixels

    limit = max_pixels()  # a bad setting is one line here, not a reason on every file
    root, sources, class_names = _layout(path)
    index = {name: i for i, name in enumerate(class_names)}
    # the root and every split and class folder count as visited: a walk never enters another's
    class_dirs = [d for dirs in sources.values() for d in dirs]
    visited = {key for key in map(_identity, [root, *{d.parent for d in class_dirs}, *class_dirs]) if key is not None}
    candidates: list[tuple[str, int, Path, Path]] = []  # (split, label, class folder, file)
    for split, dirs in sources.items():
        for d in dirs:
            images = _images_in(d, visited)
            if not images:
                raise CnnregError(f"class folder {d} is empty (no jpg, png, bmp or gif images)")
            candidates.extend((split, index[d.name], d, image) for image in images)
    first: dict[tuple[int, int], Path] = {}  # real file → the path it was listed under
    duplicates: dict[int, Path] = {}
    for i, candidate in enumerate(candidates):
        key = _identity(candidate[3])
        if key is not None and first.setdefault(key, candidate[3]) != candidate[3]:
            duplicates[i] = first[key]

    def inspect(i: int) -> tuple[str | None, tuple[int, int] | None, str | None]:
        if i in duplicates:
            return f"same file as {duplicates[i].relative_to(root)}", None, None
        return _inspect(candidates[i][3], limit)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(inspect, range(len(candidates))))
    result = FolderScan(root, class_names, {split: ([], []) for split in sources})
    readable: Counter = Counter()
    for (split, label, class_dir, image), (problem, size, mode) in zip(candidates, results):
        if problem is not None:
            result.skipped.append((str(image.relative_to(root)), problem))
            continue
        readable[class_dir] += 1
        files, labels = result.parts[split]
        files.append(str(image))
        labels.append(label)
        result.sizes[size] += 1
        if mode in _GRAY_MODES:
            result.gray += 1
        else:
            result.color += 1
    for split, dirs in sources.items():
        for d in dirs:
            if not readable[d]:
                raise CnnregError(f"class folder {d} has no readable images (all {sum(1 for c in candidates if c[2] == d)} skipped)")
    return result


def folder(
    path: str,
    resize: Resize = "stretch",
    validation: Fraction = 0.15,
    test: Fraction = 0.10,
    split_seed: int = 42,
):
    """Your own images: ``PATH/CLASS/*.jpg`` (jpg, png, bmp, gif), one sub-folder per class.

    With ``train/``, ``val/`` and ``test/`` sub-folders those splits are used; otherwise a
    seeded, stratified split (``validation`` and ``test`` fractions; 75/15/10 by default)
    carves the missing ones from the images.  ``resize`` fits the images to the model's input:
    ``stretch``, ``crop`` (keep the aspect ratio, centre crop) or ``pad`` (black borders).
    Empty, non-image and truncated files are skipped and counted in the run header.
    """
    import numpy as np

    from cnnreg.kinds.datasets import Dataset, Split, split_indices

    if validation + test >= 1:
        raise ParameterError(f"folder: validation + test must be < 1 (got {validation} + {test})")
    found = scan(path)
    if "all" in found.parts:
        files, labels = found.parts["all"]
        given: dict[str, tuple[list[str], list[int]]] = {}
        v_frac, t_frac = validation, test
    else:
        files, labels = found.parts["train"]
        given = {k: v for k, v in found.parts.items() if k != "train"}
        v_frac = 0.0 if "validation" in given else validation
        t_frac = 0.0 if "test" in given else test
    y = np.asarray(labels, dtype="int64")
    parts = split_indices(y, (1 - v_frac - t_frac, v_frac, t_frac), seed=split_seed)
    splits = {}
    for name, rows in zip(("train", "validation", "test"), parts):
        if name in given:
            splits[name] = Split(files=given[name][0], y=given[name][1])
        elif len(rows):
            rows = np.sort(rows)  # file order: neighbouring files stay neighbours on disk
            splits[name] = Split(files=[files[i] for i in rows], y=y[rows])
    if "train" not in splits:
        raise CnnregError(f"folder {found.root}: no training images are left after the split")
    shape = found.shape
    uniform = shape[0] is not None
    common = ", ".join(f"{h}x{w}" for (h, w), _ in found.sizes.most_common(3))
    varying = f"images of {len(found.sizes)} sizes: {common}" + (", ..." if len(found.sizes) > 3 else "")
    return Dataset(
        name=found.root.name or str(found.root),
        class_names=found.class_names,
        train=splits["train"],
        validation=splits.get("validation"),
        test=splits.get("test"),
        shape=shape,
        default_input_shape=shape if uniform else None,  # type: ignore[arg-type]
        input_shape_reason="the images' own size" if uniform else varying,
        skipped=found.skipped_lines(),
        resize=resize,
        location=str(found.root),
        local=True,
        description=f"{sum(len(s) for s in splits.values())} images in {len(found.class_names)} class folders",
    )
