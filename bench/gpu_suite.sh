#!/usr/bin/env bash
# Run the GPU benchmarks on an offline CUDA machine within a time budget (about 8 minutes on
# an H100), from the repository root:
#
#   bash bench/gpu_suite.sh
#
# Expects the base model in .gpu-carry/minilm and the data sets in .gpu-carry/datasets
# (override with BASE_MODEL and DATA_DIR). Each step writes $OUT/<name>.txt (OUT defaults to
# bench/out); a failing step is reported and the next one still runs. Steps run in order while
# the budget (GPU_SUITE_BUDGET_S, default 480 s) leaves room for their usual duration:
#
#   train_speed       both model shapes, 20,000 SST-2 sentences, 1 epoch, batch 32
#   train_speed_pairs bert-base shape, 6,000 pairs cut to exactly 128 tokens (the compute-bound
#                     case: fp32 against bf16, and the precision annotune's probe picks there)
#   distributed_2gpu  one prepared SST-2 run (20,000 sentences, 2 epochs, global batch 32) in
#                     one process and under torchrun on every GPU: steps, validation score,
#                     s/epoch (bench/distributed_check.py; "skipped" with fewer than 2 GPUs)
#   accuracy_sst2     full train.tsv -> dev.tsv, 3 epochs on both sides (annotune's default is
#                     10 with early stopping; capped at the HF recipe's 3 to fit the budget)
#   label_errors_sst2 the label check with fine-tuned folds (5 folds, 3 epochs) on 2,000 SST-2
#                     sentences with 200 flipped: precision@k and recall@2k
#   label_errors_sst2_frozen, label_errors_sst2_both   the frozen-encoder check on the same
#                     planted set, and the two averaged (bench/label_errors.py --combine)
#   label_errors_conll2003  fine-tuned folds on 1,000 CoNLL-2003 sentences (5 folds, 5 epochs)
#   accuracy_rte, accuracy_conll2003, accuracy_squad   each recipe's own defaults, if time remains
#
# GPU_SUITE_QUICK=1 runs every step on a small subset (a smoke test of the suite itself);
# GPU_SUITE_STEPS=name,name runs only the named steps.
set -u

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-bench/out}
DATA_DIR=${DATA_DIR:-.gpu-carry/datasets}
BASE_MODEL=${BASE_MODEL:-.gpu-carry/minilm}
BUDGET=${GPU_SUITE_BUDGET_S:-480}
QUICK=${GPU_SUITE_QUICK:-0}
STEPS=${GPU_SUITE_STEPS:-}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

# sqlite-utils (and anything else missing) may travel as wheels beside the data
if ! "$PYTHON" -c "import sqlite_utils" 2>/dev/null && ls .gpu-carry/wheels/*.whl >/dev/null 2>&1; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target /tmp/gpu-suite-site \
        .gpu-carry/wheels/*.whl && export PYTHONPATH="/tmp/gpu-suite-site:${PYTHONPATH:-}"
fi
# annotune need not be installed: map the namespace onto this checkout
if ! "$PYTHON" -c "import annotune.core.plugins" 2>/dev/null; then
    shim=$(mktemp -d)
    mkdir -p "$shim/annotune"
    for part in core plugins desktop; do ln -s "$PWD/$part" "$shim/annotune/$part"; done
    export PYTHONPATH="$shim:${PYTHONPATH:-}"
fi

{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
    "$PYTHON" -c "import torch, transformers, onnxruntime; print('torch', torch.__version__, \
'transformers', transformers.__version__, 'onnxruntime', onnxruntime.__version__, \
'cuda', torch.cuda.is_available())" 2>&1
} | tee "$OUT/environment.txt"

START=$(date +%s)
COMMON=(--data-dir "$DATA_DIR" --base-model "$BASE_MODEL")
if [ "$QUICK" = 1 ]; then
    SPEED_LIMIT=(--train-limit 2000)
    PAIRS_LIMIT=(--train-limit 500)
    DIST_LIMIT=(--train-limit 2000 --epochs 1)
    SST2_LIMIT=(--train-limit 2000 --eval-limit 500 --epochs 1)
    CHECK_SST2=(--examples 400 --folds 3 --epochs 1)
    CHECK_CONLL=(--examples 300 --folds 3 --epochs 1)
    TASK_LIMIT=(--train-limit 500 --eval-limit 200 --epochs 1)
else
    SPEED_LIMIT=(--train-limit 20000)
    PAIRS_LIMIT=(--train-limit 6000)
    DIST_LIMIT=(--train-limit 20000 --epochs 2)
    SST2_LIMIT=(--epochs 3)
    CHECK_SST2=(--examples 2000 --folds 5 --epochs 3)
    CHECK_CONLL=(--examples 1000 --folds 5 --epochs 5)
    TASK_LIMIT=()
fi

# the label-check bench takes its device as told (its default is the CPU)
if nvidia-smi -L >/dev/null 2>&1; then CHECK_DEVICE=(--device cuda); else CHECK_DEVICE=(--device cpu); fi

# step NAME USUAL_SECONDS COMMAND...: run when the budget leaves USUAL_SECONDS, cut at the budget
step() {
    local name=$1 usual=$2
    shift 2
    if [ -n "$STEPS" ] && [[ ",$STEPS," != *",$name,"* ]]; then
        return
    fi
    local left=$((BUDGET - ($(date +%s) - START)))
    if [ "$QUICK" != 1 ] && [ "$left" -lt "$usual" ]; then
        echo "== $name skipped: ${left}s of the budget left, it usually takes ${usual}s" \
            | tee "$OUT/$name.txt"
        return
    fi
    [ "$left" -lt 60 ] && left=60
    echo "== $name (up to ${left}s)"
    local began=$(date +%s)
    timeout --signal=TERM --kill-after=10 "$left" "$@" > "$OUT/$name.txt" 2>&1
    local code=$?
    echo "== $name exit $code after $(($(date +%s) - began))s" | tee -a "$OUT/$name.txt"
    grep -v '^RESULT ' "$OUT/$name.txt" | tail -n 12
}

step train_speed 150 "$PYTHON" bench/train_speed.py "${COMMON[@]}" --shapes minilm,bert-base \
    --epochs 1 "${SPEED_LIMIT[@]}"
step train_speed_pairs 90 "$PYTHON" bench/train_speed.py "${COMMON[@]}" --shapes bert-base \
    --pairs --variants hf-fp32,hf-bf16,annotune --epochs 1 "${PAIRS_LIMIT[@]}"
# fewer than 2 GPUs: the check says "skipped" at once and the suite goes on
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
if [ "${gpus:-0}" -ge 2 ]; then
    step distributed_2gpu 120 "$PYTHON" bench/distributed_check.py "${COMMON[@]}" "${DIST_LIMIT[@]}"
elif [ -z "$STEPS" ] || [[ ",$STEPS," == *",distributed_2gpu,"* ]]; then
    echo "== distributed_2gpu skipped: ${gpus:-0} GPU(s) visible, it needs 2 or more" \
        | tee "$OUT/distributed_2gpu.txt"
fi
step accuracy_sst2 240 "$PYTHON" bench/accuracy.py --task sst2 "${COMMON[@]}" "${SST2_LIMIT[@]}"
# the fine-tuned folds, the frozen-encoder check on the same planted errors, and their average
step label_errors_sst2 90 "$PYTHON" bench/label_errors.py --dataset sst2 "${COMMON[@]}" \
    "${CHECK_SST2[@]}" "${CHECK_DEVICE[@]}" --save-probabilities "$OUT/label_errors_sst2_tuned.json"
step label_errors_sst2_frozen 30 "$PYTHON" bench/label_errors.py --dataset sst2 "${COMMON[@]}" \
    "${CHECK_SST2[@]}" "${CHECK_DEVICE[@]}" --freeze-encoder \
    --save-probabilities "$OUT/label_errors_sst2_frozen.json"
step label_errors_sst2_both 10 "$PYTHON" bench/label_errors.py --combine \
    "$OUT/label_errors_sst2_tuned.json" "$OUT/label_errors_sst2_frozen.json"
step label_errors_conll2003 150 "$PYTHON" bench/label_errors.py --dataset conll2003 \
    "${COMMON[@]}" "${CHECK_CONLL[@]}" "${CHECK_DEVICE[@]}"
step accuracy_rte 60 "$PYTHON" bench/accuracy.py --task rte "${COMMON[@]}" "${TASK_LIMIT[@]}"
step accuracy_conll2003 180 "$PYTHON" bench/accuracy.py --task conll2003 "${COMMON[@]}" \
    --no-bundles "${TASK_LIMIT[@]}"
step accuracy_squad 180 "$PYTHON" bench/accuracy.py --task squad "${COMMON[@]}" --no-bundles \
    "${TASK_LIMIT[@]}"
echo "== suite done after $(($(date +%s) - START))s; outputs in $OUT"
