"""Small, seeded data sets written the way `kadence ingest` stores Dataset snapshots
(data.parquet, profile.json, then manifest.json)."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pandas as pd

CHURN_COLUMNS = [
    {"name": "customer_id", "type": "string"},
    {"name": "tenure", "type": "int"},
    {"name": "monthly_charges", "type": "float"},
    {"name": "plan", "type": "category"},
    {"name": "paperless", "type": "bool"},
    {"name": "churned", "type": "category"},
]
HOUSES_COLUMNS = [
    {"name": "area", "type": "float"},
    {"name": "rooms", "type": "int"},
    {"name": "district", "type": "category"},
    {"name": "price", "type": "float"},
]


def churn_frame(rows: int = 300, seed: int = 0, classes: int = 2) -> pd.DataFrame:
    """Numeric, integer, categorical and boolean columns, some values missing; the label
    depends on several of them (learnable, not trivially)."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, rows)
    charges = rng.normal(70, 20, rows).round(2)
    plan = rng.choice(["basic", "plus", "premium"], rows)
    paperless = rng.choice([True, False], rows)
    logit = -0.04 * tenure + 0.03 * (charges - 70) + np.where(plan == "basic", 0.8, -0.4) + rng.normal(0, 0.7, rows)
    if classes == 2:
        label = np.where(logit > -0.6, "yes", "no")
    else:
        label = np.digitize(logit, np.quantile(logit, np.linspace(0, 1, classes + 1)[1:-1])).astype(str)
    frame = pd.DataFrame({
        "customer_id": [f"c{i:05d}" for i in range(rows)],
        "tenure": tenure,
        "monthly_charges": charges,
        "plan": plan,
        "paperless": paperless,
        "churned": label,
    })
    frame.loc[rng.choice(rows, rows // 20, replace=False), "monthly_charges"] = np.nan
    return frame


def houses_frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    area = rng.uniform(40, 200, rows).round(1)
    rooms = rng.integers(1, 7, rows)
    district = rng.choice(["north", "south", "centre"], rows)
    price = 1500 * area + 8000 * rooms + np.where(district == "centre", 60000, 0) + rng.normal(0, 15000, rows)
    return pd.DataFrame({"area": area, "rooms": rooms, "district": district, "price": price.round(0)})


def put_dataset(store, namespace: str, name: str, version: str, frame: pd.DataFrame, columns: list[dict],
                target: str | None, entity: str | None = None) -> str:
    """Write a Dataset snapshot; returns its prefix URI (ending in /)."""
    prefix = f"datasets/{namespace}/{name}/{version}/"
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    data = buffer.getvalue()
    store.put_bytes(prefix + "data.parquet", data)
    store.put_bytes(prefix + "profile.json", json.dumps({"rows": len(frame)}).encode(), "application/json")
    manifest = {
        "kind": "kadence.dev/dataset-snapshot", "namespace": namespace, "name": name, "version": version,
        "rows": len(frame), "columns": columns, "target": target, "entityColumn": entity,
        "dataFile": "data.parquet", "dataFileSha256": hashlib.sha256(data).hexdigest(),
        "profileFile": "profile.json", "createdAt": "2026-01-01T00:00:00Z",
    }
    store.put_bytes(prefix + "manifest.json", json.dumps(manifest).encode(), "application/json")
    return store.uri(prefix)
