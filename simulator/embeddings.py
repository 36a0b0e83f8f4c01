"""Deterministic embedding vectors: the same text always gives the same unit-length vector.

A vector is derived from a hash of the text (SHAKE-256, so any length comes out), scaled to
[-1, 1] and normalised to length 1. A shorter `dimensions` / `outputDimensionality` keeps the
first values of the model's full vector and normalises them again, as models trained for
shortened embeddings (OpenAI text-embedding-3, Gemini embedding models) are used.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct

# Full vector size per model id; other ids get DEFAULT_DIMENSIONS.
DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
    "gemini-embedding-001": 3072,
    "text-embedding-004": 768,
    "embedding-001": 768,
}
DEFAULT_DIMENSIONS = 1536


def is_embedding_model(model_id: str) -> bool:
    return "embedding" in model_id


def full_dimensions(model_id: str) -> int:
    return DIMENSIONS.get(model_id, DEFAULT_DIMENSIONS)


def vector(text: str, dimensions: int) -> list[float]:
    raw = hashlib.shake_256(text.encode("utf-8", "surrogatepass")).digest(4 * dimensions)
    values = [v / 2147483648.0 for v in struct.unpack(f"<{dimensions}i", raw)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def shortened(values: list[float], dimensions: int) -> list[float]:
    if dimensions >= len(values):
        return values
    head = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in head)) or 1.0
    return [v / norm for v in head]


def as_base64(values: list[float]) -> str:
    """OpenAI's `encoding_format: base64`: little-endian float32 values, base64-encoded."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
