"""`kadence data erase`: erase one or more entities from an InferenceService's prediction logs and
feedback, and from the feedback exports of MonitorPolicies, with an audit record that holds no
personal data - the same code as the ErasureRequest's Job (`kadence.workloads.erase_run`).

    kadence data erase -n ml --inference-service churn --entity-column customer_id --entity c-1042 \
        [--monitor-policy churn-quality] [--reason "ticket 42"]

Every prediction batch under predictions/<ns>/<isvc>/ (all model versions) whose logged input
`--entity-column` (or `requestId`: the prediction's id) is the entity - its value, or its keyed
hash when the column is personal - is rewritten without those records, every feedback batch
without the labels of those request ids, and every Parquet file of each --monitor-policy's
monitoring prefix (feedback exports, checkpoints) without the matching rows. The audit record
goes to monitoring/<ns>/_erasures/audit/: counts, objects rewritten, the entity only as keyed hashes (none
without KADENCE_PII_KEY), the reason. Dataset snapshots and later Dataset versions are an
ErasureRequest's work (kubectl apply): the operator re-points the Dataset's versions to the
erased snapshots, which this command cannot do. Storage comes from KADENCE_S3_*, the key from
KADENCE_PII_KEY (the namespace's Secret kadence-pii-key).
Exit codes: 0 erased (or nothing found), 1 storage failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    erase = actions.add_parser("erase", help="Erase entities from prediction logs, feedback and exports, audited.",
                               description=__doc__.split("\n\n")[0])
    erase.add_argument("-n", "--namespace", required=True)
    erase.add_argument("--inference-service", action="append", default=[], help="Repeatable.")
    erase.add_argument("--monitor-policy", action="append", default=[],
                       help="Also erase from this MonitorPolicy's feedback exports (repeatable).")
    erase.add_argument("--entity-column", required=True,
                       help="The logged input that identifies the entity, or requestId.")
    erase.add_argument("--entity", action="append", required=True,
                       help="The entity's id (its value, never stored); repeatable.")
    erase.add_argument("--reason", default=None, help="Why (e.g. a ticket number), kept in the audit record.")


def run(args: argparse.Namespace) -> int:
    from ..api.erasurerequest import SubjectMatch
    from ..settings import Settings
    from ..storage import ObjectStore, StorageError
    from ..workloads.erase_run import erase
    from ..workloads.erase_task import EraseTask

    if not (args.inference_service or args.monitor_policy):
        print("kadence data erase: name at least one --inference-service or --monitor-policy", file=sys.stderr)
        return 2
    try:
        task = EraseTask(namespace=args.namespace, request=f"cli-{uuid.uuid4().hex[:8]}", reason=args.reason,
                         match=SubjectMatch(column=args.entity_column, values=args.entity),
                         inference_services=args.inference_service, monitor_policies=args.monitor_policy)
    except ValueError as error:
        print(f"kadence data erase: {error}", file=sys.stderr)
        return 2
    try:
        store = ObjectStore.from_env()
    except (ValueError, StorageError) as error:
        print(f"kadence data erase: no storage: {error} (set KADENCE_S3_*)", file=sys.stderr)
        return 2
    key = (Settings.from_env().pii_key or "").strip().encode() or None
    try:
        result = erase(task, store, key, guard=False)
    except (StorageError, OSError, ValueError) as error:
        print(f"kadence data erase: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(json.loads(store.get_bytes(store.key_of(result.audit_uri))), sort_keys=True))  # the audit record
    return 0
