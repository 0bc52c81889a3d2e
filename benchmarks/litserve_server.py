"""The LitServe peer for ``serve.py --peer litserve``: the same fine-tuned classifier behind LitServe
at its best setting for the machine: one worker per core (each with one torch thread, so workers
do not fight over cores), server-side batching of 32 requests or 10 ms, a transformers
``pipeline`` on each batch (LitServe's documented decode -> batch -> predict -> unbatch -> encode).

    python benchmarks/litserve_server.py MODEL_DIR PORT [WORKERS]
"""

from __future__ import annotations

import os
import sys

import litserve as ls

MODEL_DIR = sys.argv[1]


class SentimentAPI(ls.LitAPI):
    """One SST-2 sentence per request: ``{"text": ...}`` -> ``{"label", "score"}``."""

    def setup(self, device):
        import torch
        from transformers import pipeline

        torch.set_num_threads(1)
        self.classifier = pipeline("text-classification", model=MODEL_DIR, device=-1)

    def decode_request(self, request):
        return request["text"]

    def batch(self, inputs):
        return list(inputs)

    def predict(self, texts):
        return self.classifier(texts, batch_size=len(texts), truncation=True)

    def unbatch(self, output):
        return list(output)

    def encode_response(self, output):
        return {"label": output["label"], "score": output["score"]}


if __name__ == "__main__":
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else (os.cpu_count() or 1)
    server = ls.LitServer(SentimentAPI(max_batch_size=32, batch_timeout=0.01), accelerator="cpu",
                          workers_per_device=workers)
    server.run(host="127.0.0.1", port=int(sys.argv[2]), generate_client_file=False, log_level="warning")
