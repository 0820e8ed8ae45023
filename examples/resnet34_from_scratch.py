"""ResNet-34 from scratch on the digits, through the same code as `cnnreg run`.

    python examples/resnet34_from_scratch.py            # 10 epochs (~4-8 minutes on 2 CPU cores)
    python examples/resnet34_from_scratch.py --epochs 1 # a quick look
"""

import argparse

from cnnreg.training import RunConfig, train

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--run-dir", default=None)
args = parser.parse_args()
outcome = train(RunConfig("resnet34", init="he_normal", clip="norm=1.0", epochs=args.epochs), run_dir=args.run_dir)
print(f"{outcome.status}: best epoch {outcome.best_epoch} {outcome.best}; test {outcome.test and outcome.test['accuracy']:.4f}")
print(f"files in {outcome.run_dir}")
