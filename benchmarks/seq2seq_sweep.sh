#!/usr/bin/env bash
# Learning-rate / epoch sweep for summarization and translation on the shared data, plus the SmolLM2
# route and a zero-shot SmolLM2 evaluation; prints one line of test metrics per run.
#
#   DEVICE=cuda bash benchmarks/seq2seq_sweep.sh      # all runs at once on one GPU (~6 min on an H200)
#   DEVICE=cpu PARALLEL=0 bash benchmarks/seq2seq_sweep.sh   # one after another (many hours on a small CPU)
#
# Each run has its own FMHUB_HOME under $WORK (default: a new temporary folder) sharing the built
# offline models; beam-search figures come from `fmhub evaluate --num-beams 4` on the registered model.
set -u
DEVICE=${DEVICE:-cuda}
PARALLEL=${PARALLEL:-1}
FMHUB=${FMHUB:-"python -m fmhub.cli.app"}
DATA=${DATA:-$(cd "$(dirname "$0")/../.." && pwd)/shared/datasets}
WORK=${WORK:-$(mktemp -d)}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
TR="--train $DATA/translation/train.tsv --validation $DATA/translation/validation.tsv --test $DATA/translation/test.tsv"
SU="--train $DATA/summarization/train.jsonl --validation $DATA/summarization/validation.jsonl --test $DATA/summarization/test.jsonl --map document=dialogue --map summary=summary"

# Build the offline models once (bert2bert from MiniLM; SmolLM2 dequantised from its GGUF file).
FMHUB_HOME=$WORK/base python -c "
from fmhub.catalog.cards import get_system_card
from fmhub.catalog.sources import require_local_path
for name in ('minilm-l6-bert2bert', 'SmolLM2-135M-Instruct'):
    require_local_path(get_system_card(name), False)
" || exit 1

home() { mkdir -p "$WORK/$1/artifacts"; cp -r "$WORK/base/artifacts/cache" "$WORK/$1/artifacts/"; echo "$WORK/$1"; }

finetune() {  # NAME BEAMS finetune-args...
  local name=$1 beams=$2; shift 2
  local h; h=$(home "$name")
  FMHUB_HOME=$h $FMHUB finetune "$@" --device "$DEVICE" --registered-model-name m --json > "$WORK/$name.json" 2> "$WORK/$name.log"
  if [ "$beams" != 0 ]; then
    local test; test=$(echo "$@" | grep -o -- "--test [^ ]*" | cut -d' ' -f2)
    FMHUB_HOME=$h $FMHUB evaluate --model m --test "$test" --device "$DEVICE" --num-beams "$beams" --json \
      > "$WORK/$name.beam$beams.json" 2>> "$WORK/$name.log"
  fi
}

zeroshot() {  # NAME TASK TEST_FILE
  FMHUB_HOME=$(home "$1") $FMHUB evaluate --model SmolLM2-135M-Instruct --task "$2" --test "$3" --device "$DEVICE" \
    --json > "$WORK/$1.json" 2> "$WORK/$1.log"
}

run() { if [ "$PARALLEL" = 1 ]; then "$@" & else "$@"; fi; }
run finetune t_b2b_e3_lr1e-4 4 --model minilm-l6-bert2bert --task translation $TR --num-train-epochs 3
run finetune t_b2b_e6_lr1e-4 4 --model minilm-l6-bert2bert --task translation $TR --num-train-epochs 6
run finetune t_b2b_e6_lr3e-4 4 --model minilm-l6-bert2bert --task translation $TR --num-train-epochs 6 --learning-rate 3e-4
run finetune t_b2b_e10_lr3e-4 4 --model minilm-l6-bert2bert --task translation $TR --num-train-epochs 10 --learning-rate 3e-4
run finetune s_b2b_e1_lr1e-4 4 --model minilm-l6-bert2bert --task summarization $SU --num-train-epochs 1
run finetune s_b2b_e3_lr1e-4 4 --model minilm-l6-bert2bert --task summarization $SU --num-train-epochs 3
run finetune s_b2b_e3_lr3e-4 4 --model minilm-l6-bert2bert --task summarization $SU --num-train-epochs 3 --learning-rate 3e-4
run finetune t_smol_e2 0 --model SmolLM2-135M-Instruct --task translation $TR --num-train-epochs 2
run finetune s_smol_e2 0 --model SmolLM2-135M-Instruct --task summarization $SU --num-train-epochs 2
run zeroshot s_smol_zeroshot summarization "$DATA/summarization/test.jsonl"
wait

python - "$WORK" <<'PY'
import glob, json, os, sys
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    try:
        test = json.load(open(f)).get("test") or {}
    except ValueError:
        print(os.path.basename(f)[:-5], "failed: see", f[:-5].split(".beam")[0] + ".log")
        continue
    shown = ", ".join(f"{k} {v:.2f}" for k, v in test.items() if isinstance(v, float))
    print(os.path.basename(f)[:-5], shown)
PY
echo "runs, logs and registered models: $WORK"
