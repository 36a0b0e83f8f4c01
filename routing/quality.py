"""The catalogue's quality scores and tiers (routing/quality_data.json, ModelQuality rows).

The data file keeps a public leaderboard's scores with their source and date; `sync_quality`
(and `seed_demo`, and the migration that created the table) writes them into ModelQuality,
leaving alone the rows an operator edited. docs/policies.md#quality-tiers explains the use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from django.db import transaction

from .engine import TIERS
from .quality_models import ModelQuality

DATA_FILE = Path(__file__).with_name("quality_data.json")


@dataclass(frozen=True)
class QualityEntry:
    model: str
    score: float | None
    tier: str
    tier_basis: str


def quality_data_load(path: Path = DATA_FILE) -> tuple[dict, list[QualityEntry]]:
    """(the file's header, one entry per model, each with its tier resolved)."""
    data = json.loads(path.read_text())
    thresholds = data["tier_thresholds"]
    entries = []
    for model, spec in sorted(data["models"].items()):
        score = spec.get("score")
        tier = spec.get("tier") or tier_for_score(score, thresholds)
        if tier not in TIERS:
            raise ValueError(f"{path.name}: {model}: tier {tier!r} is not one of {TIERS}")
        entries.append(QualityEntry(model, score, tier, spec.get("tier_basis", "")))
    return data, entries


def tier_for_score(score: float | None, thresholds: dict) -> str:
    """The tier a score falls in: at or above a tier's threshold, highest tier first."""
    if score is None:
        raise ValueError("a model without a score needs an explicit tier")
    for tier in reversed(TIERS):
        floor = thresholds.get(tier)
        if floor is None or score >= floor:
            return tier
    return TIERS[0]


@transaction.atomic
def model_quality_sync(model_class=None, path: Path = DATA_FILE) -> tuple[int, int]:
    """Write the data file's scores and tiers; rows an operator overrode are kept. Returns
    (rows written, rows kept as overridden). `model_class` lets a migration pass its own."""
    model_class = model_class or ModelQuality
    header, entries = quality_data_load(path)
    as_of = date.fromisoformat(header["as_of"])
    source = f"{header['source']} ({header['source_url']})"[:500]
    written = kept = 0
    for entry in entries:
        row = model_class.objects.filter(model=entry.model).first()
        if row is not None and row.overridden:
            kept += 1
            continue
        model_class.objects.update_or_create(
            model=entry.model,
            defaults={
                "score": entry.score,
                "tier": entry.tier,
                "source": source if entry.score is not None else "",
                "as_of": as_of if entry.score is not None else None,
                "tier_basis": entry.tier_basis[:500],
            },
        )
        written += 1
    return written, kept


def model_quality_map() -> dict[str, tuple[float | None, str]]:
    """{model: (score, tier)} for the catalogue snapshot."""
    return {m: (s, t) for m, s, t in ModelQuality.objects.values_list("model", "score", "tier")}
