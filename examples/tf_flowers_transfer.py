"""The lecture's transfer-learning recipe: Xception pretrained on ImageNet, on tf_flowers.

Phase 1 freezes the base and trains a new global-average-pooling + softmax head
(SGD lr 0.2, momentum 0.9); phase 2 unfreezes the base at lr 0.01. Images are resized to
224×224 and passed through Xception's own preprocess_input; random crop and horizontal flip
augment the training split; tf_flowers' single split becomes the lecture's
train[:10%] test / train[10%:25%] validation / train[25%:] train.

It needs the prepared tf_flowers data (tensorflow-datasets) and the ImageNet weights of Xception
in the Keras cache. Without them it prints, in one line, where to put them and how to get them.

    python examples/tf_flowers_transfer.py [--epochs 5] [--fine-tune-epochs 5]
"""

import argparse
import sys

from cnnreg.errors import CnnregError
from cnnreg.training import RunConfig, train

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--fine-tune-epochs", type=int, default=5)
parser.add_argument("--run-dir", default=None)
args = parser.parse_args()
config = RunConfig(
    "keras-xception", dataset="tf_flowers", weights="imagenet", freeze_base=True,
    optimizer="sgd:momentum=0.9", lr=0.2, epochs=args.epochs,
    fine_tune_epochs=args.fine_tune_epochs, fine_tune_lr=0.01,
    regularisers=["crop", "flip"], input_shape=(224, 224, 3),
)
try:
    outcome = train(config, run_dir=args.run_dir)
except CnnregError as exc:
    print(f"cannot run the recipe here: {exc}", file=sys.stderr)
    sys.exit(2)
print(f"{outcome.status}: best {outcome.best} at epoch {outcome.best_epoch}; test {outcome.test}")
