"""The baseline for ``serve.py``: one transformers ``pipeline`` call per request behind a plain
FastAPI route (what a quick hand-written model server does).

    python benchmarks/pipeline_server.py MODEL_DIR PORT
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from transformers import pipeline

app = FastAPI()
classifier = pipeline("text-classification", model=sys.argv[1], device=-1)


class Request(BaseModel):
    text: str


@app.post("/predict")
def predict(request: Request) -> dict:
    """Classify one text."""
    return classifier(request.text)[0]


@app.get("/health")
def health() -> dict:
    """Liveness."""
    return {"status": "ok"}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
