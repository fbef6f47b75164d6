"""values.yaml documents every key, with an example, and the README's table is generated from it."""

from __future__ import annotations

import pytest
import yaml

from .valuesdoc import CHART, README, documented_keys, readme_with_table, rows, undocumented

VALUES_FILES = [CHART / "values.yaml", CHART / "charts" / "minio" / "values.yaml"]


@pytest.mark.parametrize("path", VALUES_FILES, ids=lambda p: str(p.relative_to(CHART)))
def test_every_key_of_the_values_has_a_description(path):
    text = path.read_text()
    assert undocumented(yaml.safe_load(text), documented_keys(text)) == []


@pytest.mark.parametrize("path", VALUES_FILES, ids=lambda p: str(p.relative_to(CHART)))
def test_every_non_boolean_key_shows_an_example(path):
    without = [row.key for row in rows(path) if row.type != "bool" and "Example:" not in row.description]
    assert without == []


def test_a_key_without_a_description_is_found():
    text = "image:\n  # -- The registry.\n  registry: x\n  tag: y\n"
    assert undocumented(yaml.safe_load(text), documented_keys(text)) == ["image.tag"]


def test_the_readme_table_is_generated_from_the_current_values():
    readme = README.read_text()
    assert readme == readme_with_table(readme), "run: .venv/bin/python -m tests.chart.valuesdoc"
