"""`cnnreg attack` against IBM's Adversarial Robustness Toolbox (ART) on the same job.

The job: PGD L∞, 40 steps of 2.5 · eps / 40 with a random start, at eps 0.02, 0.05 and 0.1, on
the test split of a LeNet-5 trained on the digits (2 epochs, 32×32, 179 images; trained once,
before anything is timed).  Both sides are timed whole, as a user waits for them, in a fresh
Python each time (wall time, start-up included):

* cnnreg: ``python -m cnnreg attack RUN --attack pgd:steps=40 --eps 0.02,0.05,0.1 --json``;
* ART: a plain script that imports TensorFlow and ART, loads the same ``model.keras``, takes
  the model's logits (the Dense before the softmax, as cnnreg does), loads the same images
  (saved once to an .npz: reading the dataset is not ART's job) and runs
  ``ProjectedGradientDescent`` (``TensorFlowV2Classifier``, batch 128, ``num_random_init=1``)
  at each eps, then predicts the clean and adversarial images.

The two alternate, ``--repeats`` times, so that a load on the shared machine hits both alike;
each pair's ratio is printed, then the medians, their ratio and the median of the pairs' ratios
(goal: at most 0.5), the robust
accuracies of both (they should agree to a few examples: the random starts differ) and, for
reference, the start-up both share (``python -c "import keras"``).  Run by hand:

    python benchmarks/attack_speed.py --repeats 5

``--training`` measures adversarial training instead: LeNet-5 on the digits, ``--epochs``
epochs with no regulariser and with each of ``TRAINING`` (FGSM on half of each batch, PGD-7 on
all of it under L∞ and L2), alternated in one process (TensorFlow started once); per run the
median seconds of an epoch after the first (which compiles the step), from history.csv, and
its ratio to plain training in the same round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EPS = (0.02, 0.05, 0.1)
STEPS = 40

ART_SCRIPT = r'''
import sys, json
import numpy as np
import tensorflow as tf
import keras
from art.attacks.evasion import ProjectedGradientDescent
from art.estimators.classification import TensorFlowV2Classifier

model_path, images_path, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
eps_values = [float(e) for e in sys.argv[4].split(",")]
model = keras.saving.load_model(model_path)
last = model.layers[-1]  # Dense(softmax): its input through the model, then the Dense without softmax
features = keras.Model(model.inputs, last.input)
inputs = keras.Input(model.input_shape[1:])
logits = keras.Model(inputs, keras.ops.matmul(features(inputs), last.kernel) + last.bias)
data = np.load(images_path)
x, y = data["x01"], data["y"]
classes = model.output_shape[-1]
onehot = np.eye(classes, dtype="float32")[y]
classifier = TensorFlowV2Classifier(logits, nb_classes=classes, input_shape=x.shape[1:], clip_values=(0.0, 1.0),
                                    loss_object=tf.keras.losses.CategoricalCrossentropy(from_logits=True))
accuracy = {"clean": float(np.mean(classifier.predict(x, batch_size=128).argmax(1) == y))}
for eps in eps_values:
    attack = ProjectedGradientDescent(classifier, norm=np.inf, eps=eps, eps_step=2.5 * eps / steps, max_iter=steps,
                                      num_random_init=1, batch_size=128, verbose=False)
    adv = attack.generate(x, onehot)
    accuracy[str(eps)] = float(np.mean(classifier.predict(adv, batch_size=128).argmax(1) == y))
print(json.dumps(accuracy))
'''


def timed(command: list[str], env: dict) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} ... failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout


def prepare(workdir: Path, env: dict, run_dir: Path | None) -> tuple[Path, Path]:
    """A LeNet-5 run on the digits (unless given) and its test images in [0, 1], as `cnnreg
    attack` reads them, saved for ART."""
    if run_dir is None:
        run_dir = workdir / "run"
        subprocess.run([sys.executable, "-m", "cnnreg", "run", "lenet5", "--epochs", "2", "--quiet", "--log", "none",
                        "--run-dir", str(run_dir)], check=True, env=env, capture_output=True)
    images = workdir / "images.npz"
    script = (
        "import sys, numpy as np\n"
        "from cnnreg.training.saved import open_trained\n"
        "from cnnreg.training.report import split_pixels\n"
        "trained = open_trained(sys.argv[1])\n"
        "assert trained.data['preprocess'].endswith(':scale_0_1'), 'the ART script feeds [0, 1] images'\n"
        "x, y, *_ = split_pixels(trained, 'test', None, None)\n"
        "np.savez(sys.argv[2], x01=np.clip(x / np.float32(255), 0, 1).astype('float32'), y=y)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(run_dir), str(images)], check=True, env=env)
    return run_dir, images


#: The adversarial training specs --training compares with plain training.
TRAINING = ("adversarial:eps=0.1", "adversarial:eps=0.1,attack=pgd,ratio=1,steps=7",
            "adversarial:eps=1,norm=2,attack=pgd,ratio=1,steps=7")


def training(epochs: int, repeats: int) -> None:
    import csv

    import cnnreg

    specs = ("none", *TRAINING)
    seconds: dict[str, list[float]] = {spec: [] for spec in specs}
    with tempfile.TemporaryDirectory(prefix="cnnreg-advtrain-") as tmp:
        for i in range(repeats):
            for spec in specs:
                run_dir = Path(tmp) / f"{i}-{specs.index(spec)}"
                result = cnnreg.run("lenet5", epochs=epochs, reg=() if spec == "none" else spec, run_dir=run_dir,
                                    quiet=True, log="none")
                assert result.status == "completed", result.message
                with open(run_dir / "history.csv", newline="") as handle:
                    epoch = statistics.median(float(row["seconds"]) for row in list(csv.DictReader(handle))[1:])
                seconds[spec].append(epoch)
                ratio = epoch / seconds["none"][-1]
                print(f"round {i + 1} {spec:<50} {epoch:6.2f} s per epoch, x{ratio:.2f} plain "
                      f"(load {os.getloadavg()[0]:.2f})", flush=True)
    plain = statistics.median(seconds["none"])
    print(f"\nmedian over {repeats} rounds (epochs 2..{epochs}, LeNet-5, digits 32x32, batch 32):")
    for spec in specs:
        median = statistics.median(seconds[spec])
        print(f"  {spec:<50} {median:6.2f} s per epoch, x{median / plain:.2f} plain training")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--run", type=Path, help="an existing LeNet-5 digits run (default: train one)")
    parser.add_argument("--training", action="store_true", help="time adversarial training against plain training")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run with --training")
    args = parser.parse_args()
    if args.training:
        training(args.epochs, args.repeats)
        return
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    eps_text = ",".join(str(e) for e in EPS)
    with tempfile.TemporaryDirectory(prefix="cnnreg-attack-") as tmp:
        tmp = Path(tmp)
        run_dir, images = prepare(tmp, env, args.run)
        art_script = tmp / "art_pgd.py"
        art_script.write_text(ART_SCRIPT)
        cnnreg_cmd = [sys.executable, "-m", "cnnreg", "attack", str(run_dir), "--attack", f"pgd:steps={STEPS}",
                      "--eps", eps_text, "--json"]
        art_cmd = [sys.executable, str(art_script), str(run_dir / "model.keras"), str(images), str(STEPS), eps_text]
        keras_cmd = [sys.executable, "-c", "import keras"]
        times: dict[str, list[float]] = {"cnnreg": [], "art": [], "import keras": []}
        ours = theirs = None
        for i in range(args.repeats):
            seconds, out = timed(cnnreg_cmd, env)
            times["cnnreg"].append(seconds)
            ours = json.loads(out)
            seconds, out = timed(art_cmd, env)
            times["art"].append(seconds)
            theirs = json.loads(out)
            times["import keras"].append(timed(keras_cmd, env)[0])
            print(f"run {i + 1}: cnnreg attack {times['cnnreg'][-1]:6.2f} s, ART {times['art'][-1]:6.2f} s, "
                  f"ratio {times['cnnreg'][-1] / times['art'][-1]:.2f}; import keras {times['import keras'][-1]:.2f} s "
                  f"(load {os.getloadavg()[0]:.2f})", flush=True)
        median = {name: statistics.median(values) for name, values in times.items()}
        pairs = statistics.median(a / b for a, b in zip(times["cnnreg"], times["art"]))
        print(f"\nmedian of {args.repeats}: cnnreg attack {median['cnnreg']:.2f} s, ART {median['art']:.2f} s, "
              f"ratio of the medians {median['cnnreg'] / median['art']:.2f}, median ratio of a pair {pairs:.2f} "
              f"(goal <= 0.5); import keras {median['import keras']:.2f} s")
        print(f"{ours['examples']} images; robust accuracy (cnnreg / ART): clean {ours['clean_accuracy']:.3f} / "
              f"{theirs['clean']:.3f}; " + ", ".join(
                  f"eps {row['eps']:g} {row['accuracy']:.3f} / {theirs[str(row['eps'])]:.3f}" for row in ours["results"]))


if __name__ == "__main__":
    main()
