#!/usr/bin/env bash
# Write a plugin, install it, see it, use it: the five-minute path of docs/plugins.md.
set -euo pipefail
work=$(mktemp -d)
cnnreg plugin new mynet --kind architecture --dir "$work"
python -m pip install -q --no-deps --no-build-isolation -e "$work/cnnreg-mynet"
cnnreg list architectures --provider cnnreg-mynet
cnnreg show mynet
cnnreg run mynet:width=8 --dataset digits:size=16 --epochs 1 --run-dir "$work/run" --quiet
python -m pip uninstall -q -y cnnreg-mynet
