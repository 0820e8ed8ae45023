"""Input pipeline throughput: cnnreg's folder pipeline vs ``keras.utils.image_dataset_from_directory``.

    python benchmarks/input_pipeline.py [--images 2000] [--rounds 8] [--json out.json]

Generates a folder of JPEGs (10 classes, 240–500 px sides, like tf_flowers' photos) in a
temporary directory, then measures, in one process on the same files:

1. images per second (and CPU milliseconds per image, which hardly depends on other jobs)
   through each pipeline with the same work: read, decode, resize to 224x224, random horizontal
   flip, batch 32, prefetch.  cnnreg's also scales pixels to 0..1 and one-hot encodes the
   labels, so the hand-written pipeline is measured with and without that too.  cnnreg's is
   measured streaming (decoding every epoch, as for data too large to cache) and cached in
   memory (what ``cnnreg run`` does when the data fits: every epoch after the first);
2. the training-step time of a small model (LeNet-5 at 224x224x3, batch 32) fed from in-memory
   synthetic arrays, from the cached pipeline (with and without the flip) and from the
   streaming pipeline, so it shows whether the input pipeline is the bottleneck of
   ``cnnreg run`` on this machine.

Passes are interleaved and the median and best of them are reported for each (the machine may
be shared with other jobs: compare figures of the same run only).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

SIZE, BATCH, CLASSES = 224, 32, 10


def make_folder(root: Path, images: int, seed: int = 0) -> None:
    """``images`` JPEGs of smooth random shapes in ``CLASSES`` class folders."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    for i in range(images):
        label = i % CLASSES
        folder = root / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        width, height = (int(v) for v in rng.integers(240, 501, 2))
        image = Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(0, 256, 3)))
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            x0, y0 = int(rng.integers(0, width - 20)), int(rng.integers(0, height - 20))
            box = (x0, y0, x0 + int(rng.integers(10, width // 2)), y0 + int(rng.integers(10, height // 2)))
            draw.ellipse(box, fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        noise = rng.integers(0, 24, (height, width, 3), dtype=np.uint8)  # texture, so JPEG has work to do
        image = Image.fromarray(np.clip(np.asarray(image, dtype=np.int16) + noise, 0, 255).astype(np.uint8))
        image.save(folder / f"{i:05d}.jpg", quality=90)


def throughput(make_dataset, batches: int) -> tuple[float, float]:
    """(images per second, CPU milliseconds per image) over ``batches`` batches of a fresh
    pipeline, after a warm-up.  CPU time per image hardly depends on what else the machine runs."""
    iterator = iter(make_dataset())
    for _ in range(5):  # start the threads, trace the functions, let AUTOTUNE settle
        next(iterator)
    cpu, start = time.process_time(), time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * BATCH / (time.perf_counter() - start), 1000 * (time.process_time() - cpu) / (batches * BATCH)


def plan_for(root: Path, *, cached: bool):
    """A prepared cnnreg plan (LeNet-5 at 224x224x3, flip) on the folder."""
    from cnnreg.datasets import pipeline
    from cnnreg.training.config import RunConfig
    from cnnreg.training.model import prepare
    from cnnreg.training.config import resolve

    saved = pipeline.CACHE_FRACTION
    pipeline.CACHE_FRACTION = saved if cached else 0.0
    try:
        config = RunConfig(architecture="lenet5", dataset=f"folder:{root},validation=0,test=0", input_shape=(SIZE, SIZE, 3),
                           regularisers=["flip"], batch_size=BATCH, epochs=1)
        return prepare(resolve(config))
    finally:
        pipeline.CACHE_FRACTION = saved


def cnnreg_batches(plan):
    from cnnreg.training.batches import training_data

    return training_data(plan)["x"]


def keras_batches(root: Path, seed: int = 0, *, rescale: bool = False):
    """The hand-written pipeline; ``rescale`` adds what a model needs and cnnreg's pipeline does
    too: pixels to 0..1 and one-hot labels."""
    import keras
    import tensorflow as tf

    flip = keras.layers.RandomFlip("horizontal", seed=seed)
    ds = keras.utils.image_dataset_from_directory(
        root, image_size=(SIZE, SIZE), batch_size=BATCH, shuffle=True, seed=seed, verbose=False
    )
    if rescale:
        augment = lambda x, y: (flip(x, training=True) / 255.0, tf.one_hot(y, CLASSES))  # noqa: E731
    else:
        augment = lambda x, y: (flip(x, training=True), y)  # noqa: E731
    return ds.map(augment, num_parallel_calls=tf.data.AUTOTUNE).repeat().prefetch(tf.data.AUTOTUNE)


def step_time(plan, data: dict, steps: int) -> float:
    """Seconds per training step of ``plan.model`` fed by ``data`` (fit arguments): the second
    of two epochs of ``steps`` steps (the first traces the step function and fills buffers)."""
    import keras

    from cnnreg.training.model import compile_model

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append((time.perf_counter() - self.start) / steps)

    times: list[float] = []
    compile_model(plan, plan.model)
    fit = {k: v for k, v in data.items() if k != "steps_per_epoch"}
    plan.model.fit(**fit, epochs=2, steps_per_epoch=steps, callbacks=[Clock()], verbose=0)
    return times[1]


def summarise(samples: dict[str, list[float]], *, best=max) -> dict[str, dict[str, float]]:
    """Median and best (``max`` for rates, ``min`` for times) of each list of measurements."""
    return {k: {"median": round(float(np.median(v)), 1), "best": round(float(best(v)), 1)} for k, v in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=8, help="interleaved throughput passes per pipeline")
    parser.add_argument("--batches", type=int, default=30, help="timed batches per pass")
    parser.add_argument("--steps", type=int, default=20, help="training steps per timed epoch")
    parser.add_argument("--step-rounds", type=int, default=2, help="interleaved step-time measurements per feed")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result: dict = {"cores": os.cpu_count(), "images": args.images, "image_size": SIZE, "batch": BATCH}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "photos"
        start = time.perf_counter()
        make_folder(root, args.images)
        print(f"generated {args.images} JPEGs in {time.perf_counter() - start:.1f} s; {os.cpu_count()} CPU cores")
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(0)
        result["load_average_before"] = round(os.getloadavg()[0], 2)
        streaming = plan_for(root, cached=False)
        start = time.perf_counter()
        cached = plan_for(root, cached=True)
        result["cache_seconds"] = round(time.perf_counter() - start, 2)
        pipelines = {
            "keras image_dataset_from_directory": lambda: keras_batches(root),
            "keras image_dataset_from_directory + rescale + one-hot": lambda: keras_batches(root, rescale=True),
            "cnnreg folder pipeline (streaming)": lambda: cnnreg_batches(streaming),
            "cnnreg folder pipeline (cached)": lambda: cnnreg_batches(cached),
        }
        speed: dict[str, list[float]] = {name: [] for name in pipelines}
        cpu: dict[str, list[float]] = {name: [] for name in pipelines}
        for round_ in range(args.rounds):  # interleaved, so a busy moment of the machine hits every pipeline
            for name in (list(pipelines) if round_ % 2 == 0 else list(pipelines)[::-1]):
                images_per_second, cpu_ms = throughput(pipelines[name], args.batches)
                speed[name].append(images_per_second)
                cpu[name].append(cpu_ms)
        result["images_per_second"] = summarise(speed)
        result["cpu_ms_per_image"] = {k: {"median": round(float(np.median(v)), 2), "best": round(min(v), 2)} for k, v in cpu.items()}
        keras_ips = speed["keras image_dataset_from_directory"]
        for mode in ("streaming", "cached"):
            ours = speed[f"cnnreg folder pipeline ({mode})"]
            result[f"ratio_{mode}"] = {"median": round(float(np.median(ours) / np.median(keras_ips)), 3),
                                       "best": round(max(ours) / max(keras_ips), 3),
                                       "per_round": [round(a / b, 3) for a, b in zip(ours, keras_ips)]}
        steps = args.steps
        x = np.random.default_rng(0).integers(0, 256, (BATCH * 8, SIZE, SIZE, 3)).astype("float32") / 255.0
        y = np.eye(CLASSES, dtype="float32")[np.arange(len(x)) % CLASSES]
        synthetic = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH).repeat()
        plain = plan_for(root, cached=True)
        plain.regularisers = []  # the same without the flip: what the pipeline itself costs
        feeds = {
            "synthetic in-memory": (cached, lambda: {"x": synthetic, "shuffle": False}),
            "cnnreg pipeline (cached, no flip)": (plain, lambda: cnnreg_batches_fit(plain)),
            "cnnreg pipeline (cached, flip)": (cached, lambda: cnnreg_batches_fit(cached)),
            "cnnreg pipeline (streaming, flip)": (streaming, lambda: cnnreg_batches_fit(streaming)),
        }
        step: dict[str, list[float]] = {name: [] for name in feeds}
        for _ in range(args.step_rounds):
            for name, (plan, data) in feeds.items():
                step[name].append(1000 * step_time(plan, data(), steps))
        result["step_ms"] = summarise(step, best=min)
    result["load_average_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


def cnnreg_batches_fit(plan) -> dict:
    from cnnreg.training.batches import training_data

    return training_data(plan)


if __name__ == "__main__":
    main()
