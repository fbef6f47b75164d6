"""Content versions: same data, same id; any change of values, order, names or types, a new one."""

import numpy as np
import pandas as pd

from kadence.domain.data.versioning import ContentHash, dataset_version, featureset_version

FRAME = pd.DataFrame({"a": [1.0, 2.0, np.nan], "b": ["x", "y", None]})
TYPES = {"a": "float", "b": "string"}


def test_the_same_data_gives_the_same_version_every_time():
    assert dataset_version(FRAME, TYPES) == dataset_version(FRAME.copy(), TYPES)


def test_the_version_does_not_depend_on_how_rows_are_split_into_batches():
    content = ContentHash(TYPES.items())
    content.update(FRAME.iloc[:1])
    content.update(FRAME.iloc[1:])
    assert (content.version(), content.hexdigest()) == dataset_version(FRAME, TYPES)
    assert content.rows == 3


def test_a_changed_value_a_reordering_a_renamed_column_or_a_new_type_make_a_new_version():
    base = dataset_version(FRAME, TYPES)[0]
    changed = FRAME.copy()
    changed.loc[0, "a"] = 1.5
    assert dataset_version(changed, TYPES)[0] != base
    assert dataset_version(FRAME.iloc[::-1], TYPES)[0] != base
    assert dataset_version(FRAME.rename(columns={"b": "c"}), {"a": "float", "c": "string"})[0] != base
    assert dataset_version(FRAME, {"a": "float", "b": "category"})[0] != base


def test_a_version_id_is_a_sha256_prefix():
    version, sha256 = dataset_version(FRAME, TYPES)
    assert len(sha256) == 64 and sha256.startswith(version) and len(version) == 16


DEFINITIONS = [{"name": "x", "expression": "log1p(a)"}, {"name": "y", "transform": {"type": "oneHot", "column": "b"}}]


def test_a_featureset_version_changes_only_with_the_definitions_or_the_data():
    base = featureset_version(DEFINITIONS, "d1")
    assert featureset_version([dict(d) for d in DEFINITIONS], "d1") == base
    reordered_keys = [{"expression": "log1p(a)", "name": "x"}, {"transform": {"column": "b", "type": "oneHot"},
                                                               "name": "y"}]
    assert featureset_version(reordered_keys, "d1") == base
    assert featureset_version(DEFINITIONS, "d2") != base
    assert featureset_version([DEFINITIONS[0]], "d1") != base
    assert featureset_version([{"name": "x", "expression": "log(a)"}, DEFINITIONS[1]], "d1") != base
