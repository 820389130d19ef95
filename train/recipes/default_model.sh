#!/usr/bin/env bash
# Re-train the embedded default model (assets/default_model) from scratch on a CPU.
# Each step resumes where it stopped when run again (--resume latest).
set -euo pipefail
cd "$(dirname "$0")/../.."
# The same people, motions and cameras twice: every clip in a new place (for the autoencoder: many backgrounds),
# then every person in one place (for the animation model: the references show the target's place); then 600
# other people, each in one place (so the model must copy a person from the references, not remember them).
freeview synth make -o data/synth-clip --backdrop clip --identities 48 --eval-identities 6 --size 128 --seed 0
freeview synth make -o data/synth --identities 48 --eval-identities 6 --size 128 --seed 0
freeview synth make -o data/synth-people --identities 600 --eval-identities 0 --size 128 --seed 3
freeview train run --config train/configs/default-vae.yaml --resume latest
freeview train run --config train/configs/default-image.yaml --resume latest
freeview train run --config train/configs/default-people.yaml --resume latest
freeview train run --config train/configs/default-temporal.yaml --resume latest
freeview train run --config train/configs/default-decoder.yaml --resume latest
freeview train run --config train/configs/default-refiner.yaml --resume latest
freeview train run --config train/configs/default-refiner-settle.yaml --resume latest
freeview train export runs/default-refiner-settle/model -o assets/default_model --steps 1 --guidance 1.0 --top-k 2 \
    --noise-correlation 1.0 --card train/recipes/default_model_card.md
