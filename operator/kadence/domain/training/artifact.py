"""The model artifact: a fitted scikit-learn pipeline serialized with skops.

skops stores the object graph as data (a zip of JSON schemas and numpy arrays)
instead of a pickle, and refuses on load every type that is not trusted. skops
already trusts scikit-learn's public estimators and numpy's basic types; the few
internal types our pipelines contain are listed here by exact name. Anything else
— a pickled function, an unknown class, a tampered file naming `builtins.eval` —
is refused before any object is built.

Kadence's own FeatureSet transformer (`kadence.domain.data.transforms`) is trusted
by the exact names that module lists in its `TRUSTED_TYPES`.
"""

from __future__ import annotations

import hashlib
from typing import Iterable

ARTIFACT_FORMAT = "skops"
ARTIFACT_FILENAME = "model.skops"

# Types inside fitted pipelines of our families that skops does not trust by default.
TRUSTED_TYPES: frozenset[str] = frozenset({
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
    "sklearn.metrics._dist_metrics.ChebyshevDistance64",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.loss.HalfMultinomialLoss",
    "sklearn._loss.loss.HalfSquaredError",
    "sklearn._loss.link.IdentityLink",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn._loss.link.Interval",
    "collections.OrderedDict",
    "sklearn.utils._bunch.Bunch",  # an ensemble's named_estimators_ (VotingClassifier/Regressor)
})

_extra_trusted: set[str] = set()


class UntrustedArtifact(ValueError):
    """The artifact names a type that is not on the trusted list."""


class ArtifactIntegrityError(ValueError):
    """The artifact's bytes do not match the recorded sha256."""


def trust_types(names: Iterable[str]) -> None:
    """Trust more exact type names (for classes Kadence itself defines, e.g. the
    FeatureSet transformer). Never pass names derived from an artifact."""
    for name in names:
        if not name or "." not in name:
            raise ValueError(f"a trusted type needs its full module path: {name!r}")
        _extra_trusted.add(name)


def trusted_types() -> frozenset[str]:
    from ..data.transforms import TRUSTED_TYPES as FEATURESET_TYPES
    from .boosting import TRUSTED_TYPES as BOOSTING_TYPES

    return TRUSTED_TYPES | frozenset(FEATURESET_TYPES) | BOOSTING_TYPES | frozenset(_extra_trusted)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dumps(pipeline) -> bytes:
    """The skops bytes of a fitted object, canonical: equal models give equal bytes."""
    import skops.io as sio

    return canonical(sio.dumps(pipeline))


def canonical(data: bytes) -> bytes:
    """skops names nodes and array files after `id()` of the objects and stamps the
    zip entries with the current time; renumber the ids in traversal order and fix
    the timestamps, so the sha256 of a model depends only on the model."""
    import io
    import json
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(data))
    schema = json.loads(source.read("schema.json"))
    ids: dict[int, int] = {}
    files: dict[str, str] = {}

    def renumber(node):
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "__id__" and isinstance(value, int):
                    out[key] = ids.setdefault(value, len(ids) + 1)
                elif key == "file" and isinstance(value, str):
                    out[key] = files.setdefault(value, f"{len(files) + 1}.npy")
                else:
                    out[key] = renumber(value)
            return out
        if isinstance(node, list):
            return [renumber(v) for v in node]
        return node

    schema = renumber(schema)
    members = {"schema.json": json.dumps(schema, indent=2).encode()}
    for name in source.namelist():
        if name != "schema.json":
            if name not in files:
                raise UntrustedArtifact(f"unexpected member {name!r} in the skops archive")
            members[files[name]] = source.read(name)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            target.writestr(info, members[name])
    return out.getvalue()


def untrusted_types(data: bytes) -> list[str]:
    """Types in the artifact that neither skops nor Kadence trusts."""
    import skops.io as sio

    try:
        found = sio.get_untrusted_types(data=data)
    except Exception as error:  # noqa: BLE001 - not a readable skops file at all
        raise UntrustedArtifact(f"not a readable skops artifact: {type(error).__name__}: {error}") from error
    allowed = trusted_types()
    return sorted(t for t in found if t not in allowed)


def loads(data: bytes, expected_sha256: str | None = None):
    """Load an artifact; refuse it when its sha256 differs from `expected_sha256` or
    when it names any type outside the trusted list."""
    import skops.io as sio

    if expected_sha256 is not None:
        actual = sha256_hex(data)
        if actual != expected_sha256:
            raise ArtifactIntegrityError(f"artifact sha256 {actual} does not match the expected {expected_sha256}")
    try:
        found = sio.get_untrusted_types(data=data)
    except Exception as error:  # noqa: BLE001 - not a readable skops file at all
        raise UntrustedArtifact(f"not a readable skops artifact: {type(error).__name__}: {error}") from error
    allowed = trusted_types()
    refused = sorted(t for t in found if t not in allowed)
    if refused:
        raise UntrustedArtifact(f"artifact contains untrusted types: {', '.join(refused)}")
    # Pass only the types we checked, by exact name: skops refuses everything else.
    return sio.loads(data, trusted=sorted(found))
