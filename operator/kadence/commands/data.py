"""`kadence data erase`: remove one entity's predictions and their feedback from an
InferenceService's logs, and record the erasure in an audit trail that holds no personal data.

    kadence data erase -n ml --inference-service churn --entity-column customer_id --entity c-1042

Every prediction batch under predictions/<ns>/<isvc>/ (all model versions) whose logged input
`--entity-column` is the entity (its value, or its keyed hash when the column is personal) is
rewritten without those records, and every feedback batch without the labels of those request
ids. The audit record goes to monitoring/<ns>/erasures/<time>-<random>.json: the entity as its keyed hash
(none without KADENCE_PII_KEY), the counts, the objects rewritten, the reason. Storage comes from
KADENCE_S3_* (the namespace's Secret kadence-tenant-storage), the key from KADENCE_PII_KEY (its
Secret kadence-pii-key). Not covered yet: Dataset snapshots, feedback exports and future ingests.
Exit codes: 0 erased (or nothing found), 1 storage failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from datetime import datetime, timezone

from ..domain.data.erasure import ErasureReport, entity_forms, erase_feedback, erase_predictions
from ..domain.data.pii import pseudonym
from ..domain.monitoring.logformat import (LogFormatError, decode_batch, encode_batch, feedback_prefix, format_time,
                                           is_batch_key, predictions_prefix)


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    erase = actions.add_parser("erase", help="Erase an entity's predictions and feedback, with an audit record.",
                               description=__doc__.split("\n\n")[0])
    erase.add_argument("-n", "--namespace", required=True)
    erase.add_argument("--inference-service", required=True)
    erase.add_argument("--entity-column", required=True, help="The logged input that identifies the entity.")
    erase.add_argument("--entity", required=True, help="The entity's id (its value, never stored).")
    erase.add_argument("--reason", default=None, help="Why (e.g. a ticket number), kept in the audit record.")


def erase(store, namespace: str, inference_service: str, column: str, entity: str, key: str | None,
          reason: str | None = None, now: datetime | None = None) -> ErasureReport:
    secret = key.strip().encode() if key else None
    forms = entity_forms(entity, secret)
    report = ErasureReport(namespace=namespace, inference_service=inference_service, column=column,
                           time=format_time(now or datetime.now(timezone.utc)),
                           entity_hash=pseudonym(entity, secret) if secret else None, reason=reason)
    removed_ids: set[str] = set()
    for object_key in sorted(store.list_keys(predictions_prefix(namespace, inference_service))):
        if not is_batch_key(object_key):
            continue
        kept, removed = erase_predictions(decode_batch(object_key, store.get_bytes(object_key)), column, forms)
        if removed:
            store.put_bytes(object_key, encode_batch(kept))
            removed_ids.update(removed)
            report.predictions += len(removed)
            report.objects.append(object_key)
    if removed_ids:
        for object_key in sorted(store.list_keys(feedback_prefix(namespace, inference_service))):
            if not is_batch_key(object_key):
                continue
            records = decode_batch(object_key, store.get_bytes(object_key))
            kept, count = erase_feedback(records, removed_ids)
            if count:
                store.put_bytes(object_key, encode_batch(kept))
                report.feedback += count
                report.objects.append(object_key)
    stamp = report.time.replace(":", "").replace("-", "") + "-" + uuid.uuid4().hex[:8]  # two in a second: two records
    store.put_bytes(f"monitoring/{namespace}/erasures/{stamp}.json",
                    json.dumps(report.wire(), indent=2).encode(), "application/json")
    return report


def run(args: argparse.Namespace) -> int:
    from ..settings import Settings
    from ..storage import ObjectStore, StorageError

    try:
        store = ObjectStore.from_env()
    except (ValueError, StorageError) as error:
        print(f"kadence data erase: no storage: {error} (set KADENCE_S3_*)", file=sys.stderr)
        return 2
    try:
        report = erase(store, args.namespace, args.inference_service, args.entity_column, args.entity,
                       Settings.from_env().pii_key, args.reason)
    except (StorageError, LogFormatError, OSError) as error:
        print(f"kadence data erase: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(report.wire(), sort_keys=True))
    return 0
