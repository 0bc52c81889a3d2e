#!/usr/bin/env bash
# Fine-tune SmolLM2-135M-Instruct for dialogue summarization (DialogSum subset)
# on a running fmhub server, as job.yaml says: submit the job, wait for it, show it (metrics,
# registered model), predict with the new model, then deploy it to an online endpoint,
# score a request there and delete the endpoint.
# Needs `fmhub serve` running at $FMHUB_URL (default http://127.0.0.1:8000); every step, the
# prediction included, runs on that server.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export FMHUB_URL="${FMHUB_URL:-http://127.0.0.1:8000}"
field() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }  # a value of the JSON on stdin

job=$(fmhub finetune -f job.yaml --submit --json | field '["id"]')
echo "job $job queued on $FMHUB_URL"
fmhub jobs wait "$job"
fmhub jobs show "$job"
model=$(fmhub jobs show "$job" --json | field '["outputs"]["registered_model"]')
fmhub predict "$model" \
  --text "#Person1#: Did you finish the report? #Person2#: Not yet, I will send it to you tomorrow morning."

# Deploy the new model to an online endpoint, score a request at its URL, then delete the endpoint.
endpoint=$(printf '%s' "${model%%:*}" | tr 'A-Z_.' 'a-z--' | cut -c1-40)
fmhub endpoints create "$endpoint"
fmhub endpoints deploy "$endpoint" --model "$model"
request=$(mktemp)
trap 'rm -f "$request"' EXIT
cat > "$request" <<'JSON'
{"input_data": ["#Person1#: Did you finish the report? #Person2#: Not yet, I will send it to you tomorrow morning."]}
JSON
fmhub endpoints invoke "$endpoint" --data "$request"
fmhub endpoints delete "$endpoint" --yes
