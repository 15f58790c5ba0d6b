#!/usr/bin/env bash
# The augmentation experiment end to end (results: docs/results.md): does a recogniser of held-out
# handwriting-style faces gain more from generated glyphs than from classical jitter?
#
#   benchmarks/augment_experiment.sh DATA OUT [DEVICE]
#
# DATA/train.h5: the training faces; DATA/test.h5: the held-out faces (data-tools split --holdout-sources).
# OUT gets what is worth keeping (log, reports, pictures); the bulky work (run folder, generated stores)
# goes to a temporary folder. Steps:
#   1. a judge of the training faces (for the generator's filter and its readability; in no loss)
#   2. a conditional GAN (configs/$CONFIG, $GAN_STEPS steps, stopped by SIGTERM after $GAN_SECONDS s)
#   3. readability of its last checkpoint; generated glyphs: random noise, and noise mixed between the
#      styles fitted to the training faces (cond-lsgan styles), each filtered by the judge at $MIN_CONFIDENCE
#   4. evaluate augment with both generated sets, one process per seed side by side, combined
# Knobs (environment): CONFIG GAN_STEPS GAN_SECONDS PER_CLASS MIN_CONFIDENCE SHARE SEEDS CLASSIFIER_STEPS
set -euo pipefail
DATA=$1 OUT=$2 DEVICE=${3:-auto}
CONFIG=${CONFIG:-glyphs-gpu.toml} GAN_STEPS=${GAN_STEPS:-4000} GAN_SECONDS=${GAN_SECONDS:-240}
PER_CLASS=${PER_CLASS:-17} MIN_CONFIDENCE=${MIN_CONFIDENCE:-0.5} SHARE=${SHARE:-0.2} SEEDS=${SEEDS:-"0 1 2"}
CLASSIFIER_STEPS=${CLASSIFIER_STEPS:+--steps $CLASSIFIER_STEPS}
export PYTHONUNBUFFERED=1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
cl() { python3 -m cond_lsgan "$@"; }
started=$(date +%s)
phase() { echo "=== [$(($(date +%s) - started)) s] $*"; }
mkdir -p "$OUT"
cd "$ROOT"

phase "judge"
cl evaluate train-judge --data "$DATA/train.h5" --seed 1 --out "$WORK/judge.pt" --device "$DEVICE"

phase "GAN: $CONFIG, $GAN_STEPS steps, at most $GAN_SECONDS s"
timeout -s TERM "$GAN_SECONDS" python3 -m cond_lsgan train --config "configs/$CONFIG" --data "$DATA/train.h5" \
  --out "$WORK/gan" "train.steps=$GAN_STEPS" "train.device=$DEVICE" train.checkpoint_every=1000 train.sample_every=1000 \
  || echo "training ended with $? (143: stopped at the time limit, checkpoint saved)"
checkpoint=$(ls "$WORK"/gan/checkpoints/step_*.pt | sort | tail -1)
cp "$WORK/gan/metrics.jsonl" "$OUT/gan_metrics.jsonl"
cp "$(ls "$WORK"/gan/samples/*.png | sort | tail -1)" "$OUT/gan_grid.png" || true
phase "readability of $checkpoint"
cl evaluate generator --checkpoint "$checkpoint" --judge "$WORK/judge.pt" --data "$DATA/train.h5" --per-class 5 \
  --out "$OUT/generator.json" --device "$DEVICE"

phase "generated glyphs: random noise"
cl generate --checkpoint "$checkpoint" --all --per-class "$PER_CLASS" --seed 5 --judge "$WORK/judge.pt" \
  --min-confidence "$MIN_CONFIDENCE" --batch-size 2048 --out "$WORK/random.h5" --device "$DEVICE"
phase "styles of the training faces"
cl styles --checkpoint "$checkpoint" --data "$DATA/train.h5" --out "$WORK/styles.pt" --sheet "$OUT/styles.png" \
  --device "$DEVICE"
phase "generated glyphs: mixed styles"
cl generate --checkpoint "$checkpoint" --all --per-class "$PER_CLASS" --seed 5 --judge "$WORK/judge.pt" \
  --min-confidence "$MIN_CONFIDENCE" --batch-size 2048 --styles "$WORK/styles.pt" --out "$WORK/styled.h5" --device "$DEVICE"

phase "evaluate augment, seeds $SEEDS side by side"
reports=()
for seed in $SEEDS; do
  cl evaluate augment --real "$DATA/train.h5" --generated "$WORK/random.h5" "$WORK/styled.h5" --test "$DATA/test.h5" \
    --out "$WORK/augment_s$seed.json" --seeds "$seed" --generated-share "$SHARE" --device "$DEVICE" $CLASSIFIER_STEPS \
    > "$WORK/augment_s$seed.log" 2>&1 &
  reports+=("$WORK/augment_s$seed.json")
done
wait
tail -n 3 "$WORK"/augment_s*.log
python3 benchmarks/combine_augment.py "${reports[@]}" --out "$OUT/augment.json"
phase "done"
