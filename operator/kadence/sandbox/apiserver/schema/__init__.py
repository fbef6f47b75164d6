"""Schemas for the sandbox's API server: CRD structural validation, pruning, defaulting and
validation of custom objects (OpenAPI keywords and CEL rules), and the OpenAPI v2/v3
documents kubectl reads.

Entry points (the interface the server core uses):

- `validate_custom_resource(crd, obj, old=None) -> (obj pruned and defaulted, causes)`
- `validate_crd(crd) -> causes`
- `openapi_routes(get_crds) -> [aiohttp RouteDef]` (`/openapi/v2` as JSON or as gnostic
  protobuf, which kubectl asks for; `/openapi/v3` index and group-version documents)

and, for the server's field validation and reads:

- `unknown_fields(crd, obj) -> ["spec.foo", ...]` (what `fieldValidation=Strict` rejects),
  `builtin_unknown_fields(obj)` for built-in kinds, and the apiserver's words for them:
  `strict_decoding_message(kind, version, paths)` (400 BadRequest),
  `server_side_apply_message(paths)` (the same for apply patches), `warning_texts(paths)`
  (`fieldValidation=Warn`); kubectl 1.37 sends `fieldValidation=Strict` by default
- `default_custom_resource(crd, obj) -> obj` (defaults applied on read of stored objects)
- `crd_with_defaults(crd) -> crd` (singular, listKind... as the apiserver defaults them)
- `validate_crd_update(crd, old) -> causes`: validate_crd plus the fields an update may not
  change (group, plural; scope and kind once established)
- `crd_list_strategy(crd, version)`, `builtin_list_strategy(api_version, kind)`: how each
  list field merges (map lists by key, sets, atomic), read from the schemas

Fidelity limits (what a real kube-apiserver does that this package does not):

- CEL: no static type checking beyond undefined fields, no cost estimation (rules that a
  cluster refuses as too expensive are accepted), no optionals (`self.?x`,
  `optionalOldSelf`), no `ip`/`cidr`/`format`/regex `find` libraries: such rules are
  logged once and skipped, never silently passed (see `cel.SKIPPED_RULES`). Syntax errors
  are found by cel-python, so their column and wording can differ from cel-go's.
- Regular expressions (`pattern`) run on Python's `re`; RE2-only syntax may differ.
- Ratcheting is applied by correlating properties, map keys and map-list keys; ratcheted
  CEL failures are dropped, not turned into warnings.
"""

from .crd import validate_crd, validate_crd_update
from .crd import with_defaults as crd_with_defaults
from .custom_resource import default_custom_resource, unknown_fields, validate_custom_resource
from .lists import builtin_list_strategy, crd_list_strategy
from .openapi import openapi_routes
from .strict import (
    builtin_unknown_fields, server_side_apply_message, strict_decoding_message, warning_texts,
)

__all__ = [
    "builtin_list_strategy",
    "builtin_unknown_fields",
    "crd_list_strategy",
    "crd_with_defaults",
    "default_custom_resource",
    "openapi_routes",
    "server_side_apply_message",
    "strict_decoding_message",
    "unknown_fields",
    "validate_crd",
    "validate_crd_update",
    "validate_custom_resource",
    "warning_texts",
]
