#!/usr/bin/env bash
# Trains the shipped tiny models on Fashion-MNIST with `vrnn train`, one documented command each.
#
#   bash scripts/train_shipped_models.sh                 # sequentially, on cuda when available
#   DEVICE=cpu bash scripts/train_shipped_models.sh      # on the CPU (about 6 minutes per epoch per model on 2 cores)
#   MODELS="lateral topdown" bash scripts/train_shipped_models.sh   # a subset
#   PARALLEL=1 bash scripts/train_shipped_models.sh      # all models at once (one GPU shared)
#   STEP_WEIGHTS=1,1,1,1,1,1,1,2 bash scripts/train_shipped_models.sh   # loss weight per step, every model
#
# The lateral + top-down networks are trained with the loss weighted towards later steps
# (LATE_WEIGHTS below): with equal weights their last step fell below their first.
# convgru is trained for 2 epochs unless EPOCHS is set: it costs about 3x the others per epoch.
#
# Then: python scripts/ship_models.py runs/shipped   (evaluates on the 10k test set through
# `vrnn extract`, copies the weights into vision_rnn/models/weights/ and writes the model cards).
set -euo pipefail
DATA=${DATA:-fashion-mnist}             # or fashion-mnist:DIR with the IDX files
RUNS=${RUNS:-runs/shipped}
EPOCHS_SET=${EPOCHS:-}
EPOCHS=${EPOCHS:-3}
BATCH=${BATCH:-64}
SEED=${SEED:-0}
EXTRA_OPT=()
[ -n "${DEVICE:-}" ] && EXTRA_OPT=(--device "$DEVICE")
LATE_WEIGHTS=0.125,0.25,0.375,0.5,0.625,0.75,0.875,1
read -r -a MODELS <<< "${MODELS:-lateral topdown lateral-mult topdown-mult feedforward lateral-topdown lateral-topdown-mult cornet-rt convgru}"
mkdir -p "$RUNS"
for m in "${MODELS[@]}"; do
  weights=${STEP_WEIGHTS:-}
  [ -z "$weights" ] && [[ "$m" == lateral-topdown* ]] && weights=$LATE_WEIGHTS
  step_opt=()
  [ -n "$weights" ] && step_opt=(--step-weights "$weights")
  epochs=$EPOCHS
  [ -z "${EPOCHS_SET:-}" ] && [ "$m" = convgru ] && epochs=2
  cmd=("${PYTHON:-python3}" -m vision_rnn train --model "$m" --data "$DATA" --out "$RUNS/$m" --epochs "$epochs"
       --batch-size "$BATCH" --lr 0.001 --seed "$SEED" --workers 2 "${EXTRA_OPT[@]}" "${step_opt[@]}")
  echo "${cmd[*]}"
  if [ -n "${PARALLEL:-}" ]; then
    "${cmd[@]}" > "$RUNS/$m.log" 2>&1 &
  else
    "${cmd[@]}"
  fi
done
wait
