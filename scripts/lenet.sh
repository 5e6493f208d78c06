#!/usr/bin/env bash
# The main job: set up, compile examples/lenet.net and train it on
# Fashion-MNIST with the hyperparameters written in the file.
# Extra arguments go to the training program (e.g. --epochs 3).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build/netc check examples/lenet.net
build/netc build examples/lenet.net -o build/lenet
build/lenet train --save build/lenet.safetensors "$@"
