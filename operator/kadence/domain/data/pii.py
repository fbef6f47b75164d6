"""Personal data (a Dataset column with `pii: true`): what is stored instead of the value.

Prediction logs, and so the feedback exports and monitor reports built from them, hold a keyed
hash of a personal input, never the value: `pii:` + the first 32 hex digits of
HMAC-SHA256(key, value as text). The key is the namespace's Secret `kadence-pii-key` (key
`key`), which the operator provisions (tenancy.pii_secret_manifest) and hands to the model
servers and monitor Jobs through a secretKeyRef; without it a personal input is left out of the
log altogether. The same value gives the same hash under one key, so drift and quality on a
personal category still work (the reference's categories are hashed the same way); a numeric
personal column cannot be compared as a distribution any more and is reported as skipped.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import replace
from typing import Any, Iterable, Mapping

PII_PREFIX = "pii:"
PII_SECRET, PII_SECRET_KEY = "kadence-pii-key", "key"  # the namespace's Secret holding the HMAC key
PII_KEY_ENV = "KADENCE_PII_KEY"  # how model servers and Jobs get it (a secretKeyRef)
PERSONAL_DATA = "PersonalData"  # the drift status of a personal column that cannot be judged


def pseudonym(value: Any, key: bytes) -> str | None:
    """The keyed hash stored for a personal value; a missing value stays missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = value if isinstance(value, str) else _canonical(value)
    return PII_PREFIX + hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:32]


def _canonical(value: Any) -> str:
    """1, 1.0 and True hash alike only when they are alike as text: an int-valued float is the int."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def pseudonymize_record(inputs: Mapping[str, Any], personal: Iterable[str], key: bytes | None) -> dict[str, Any]:
    """A logged record's inputs with each personal one hashed (left out without a key)."""
    personal = set(personal)
    if not personal:
        return dict(inputs)
    out = {}
    for name, value in inputs.items():
        if name not in personal:
            out[name] = value
        elif key is not None:
            out[name] = pseudonym(value, key)
    return out


def pseudonymize_categories(reference, key: bytes):
    """A categorical drift reference (domain.monitoring.drift.CategoricalReference) whose
    categories are the hashes the logs hold (counts of colliding hashes added)."""
    counts: dict[str, int] = {}
    for category, count in reference.category_counts.items():
        hashed = pseudonym(category, key)
        counts[hashed] = counts.get(hashed, 0) + count
    return replace(reference, category_counts=counts)


def numeric_skip_message(name: str) -> str:
    return (f"{name!r} is personal data (pii: true): the logs hold keyed hashes of it, so its numeric distribution "
            "cannot be compared with the reference")


def missing_key_message(name: str) -> str:
    return (f"{name!r} is personal data (pii: true) and this Job has no hashing key (Secret kadence-pii-key): "
            "its values are neither logged nor compared")
