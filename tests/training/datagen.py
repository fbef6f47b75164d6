"""Small, seeded data sets written where the ingest workload puts Dataset snapshots."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd


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


def put_dataset(store, namespace: str, name: str, version: str, frame: pd.DataFrame) -> str:
    """Write data.parquet and a profile.json; returns the data URI."""
    prefix = f"datasets/{namespace}/{name}/{version}/"
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    uri = store.put_bytes(prefix + "data.parquet", buffer.getvalue())
    profile = {"rows": len(frame), "columns": {c: {"dtype": str(frame[c].dtype)} for c in frame.columns}}
    store.put_bytes(prefix + "profile.json", json.dumps(profile).encode(), "application/json")
    return uri
