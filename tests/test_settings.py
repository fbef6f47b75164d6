"""One settings object reads every KADENCE_* variable (kadence.settings)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from kadence.settings import SOURCE_S3_PREFIX, Settings, declared_variables

PACKAGE = Path(__file__).resolve().parents[1] / "operator" / "kadence"
VARIABLE = re.compile(r"^KADENCE_[A-Z0-9_]*[A-Z0-9]$")
READERS = ("get", "getenv", "pop", "setdefault")


def python_files():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def variable_constants(tree: ast.AST) -> dict[str, str]:
    """Module-level NAME = "KADENCE_..." constants."""
    found = {}
    for node in getattr(tree, "body", []):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            if VARIABLE.match(node.value.value):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        found[target.id] = node.value.value
    return found


def env_reads(path: Path) -> list[str]:
    """`x.get("KADENCE_...")`, `os.getenv(...)`, `x["KADENCE_..."]` (read, not written), also through
    a module constant naming the variable."""
    tree = ast.parse(path.read_text(), str(path))
    constants = variable_constants(tree)

    def variable(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and VARIABLE.match(node.value):
            return node.value
        if isinstance(node, ast.Name):
            return constants.get(node.id)
        return None

    def environment(node: ast.AST) -> bool:
        """os.environ, os, or a mapping named like one (env, environ, environment)."""
        name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
        return name.lower() in ("environ", "os", "env", "environment")

    reads = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in READERS
                and environment(node.func.value) and node.args and (name := variable(node.args[0]))):
            reads.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {name}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and "env" in node.func.id.lower()
              and node.args and (name := variable(node.args[0]))):  # a helper such as _env_float("KADENCE_...")
            reads.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {name}")
        elif (isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and environment(node.value)
              and (name := variable(node.slice))):
            reads.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {name}")
    return reads


def test_no_module_but_the_settings_reads_a_kadence_variable():
    offenders = [read for path in python_files() if path.name != "settings.py" or path.parent != PACKAGE
                 for read in env_reads(path)]
    assert offenders == [], "read these through kadence.settings: " + ", ".join(offenders)


def test_every_kadence_variable_the_package_names_is_declared_in_the_settings():
    declared = declared_variables()
    unknown = set()
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and VARIABLE.match(node.value):
                if node.value not in declared and not node.value.startswith(SOURCE_S3_PREFIX):
                    unknown.add(f"{node.value} ({path.relative_to(PACKAGE.parent)})")
    assert sorted(unknown) == []


def test_every_setting_is_read_by_some_module():
    """A declared variable nothing reads is a setting that does nothing: the field, or the value(...)
    of its variable, must appear in a module other than settings.py."""
    texts = [p.read_text() for p in python_files() if p.name != "settings.py" or p.parent != PACKAGE]
    sources = "\n".join(texts)
    by_value = "\n".join(t for t in texts if ".value(" in t)  # modules reading variables by name

    def read(name: str, alias: str) -> bool:
        return bool(re.search(rf"(\bsettings\(\)|\bsettings|Settings\.from_env\([^()]*\))\.{name}\b", sources)
                    or f'"{alias}"' in by_value)

    unread = [f"{name} ({field.alias})" for name, field in Settings.model_fields.items() if not read(name, field.alias)]
    assert unread == []


def test_the_chart_sets_only_variables_the_settings_declare():
    chart = Path(__file__).resolve().parents[1] / "charts" / "kadence" / "templates"
    named = {m for p in chart.rglob("*") if p.is_file() for m in re.findall(r"\bKADENCE_[A-Z0-9_]*[A-Z0-9]\b",
                                                                               p.read_text())}
    assert named and named <= declared_variables()


def test_the_reader_of_env_reads_finds_direct_and_indirect_reads(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('import os\nNAME = "KADENCE_TASK"\nos.environ.get("KADENCE_IMAGE")\nenv[NAME]\n'
                      'env["KADENCE_S3_BUCKET"] = "x"\nOWNER_ENV["KADENCE_OWNER_UID"]\n'
                      '_env_float("KADENCE_RESYNC_SECONDS", 1)\n')
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path.parent
    try:
        assert sorted(r.split(" ")[1] for r in env_reads(module)) == [
            "KADENCE_IMAGE", "KADENCE_RESYNC_SECONDS", "KADENCE_TASK"]
    finally:
        PACKAGE = saved


def test_values_are_parsed_and_defaults_apply():
    s = Settings.from_env({"KADENCE_RESYNC_SECONDS": "60", "KADENCE_S3_SECURE": "TRUE", "KADENCE_METRICS_PORT": "",
                           "KADENCE_WORKLOAD_IMAGE_PULL_SECRETS": "a, b,,", "KADENCE_TENANCY": " MinIO ",
                           "KADENCE_SOURCE_S3_ENDPOINT": "s3.example:9000", "HOME": "/root"})
    assert (s.resync_seconds, s.s3_secure, s.metrics_port, s.workload_image_pull_secrets, s.tenancy) == (
        60.0, True, None, ("a", "b"), "minio")
    assert s.source_s3 == {"KADENCE_S3_ENDPOINT": "s3.example:9000"}
    defaults = Settings.from_env({})
    assert (defaults.resync_seconds, defaults.s3_bucket, defaults.tenancy) == (600.0, "kadence", "shared")


@pytest.mark.parametrize("env, variable", [
    ({"KADENCE_METRICS_PORT": "eighty"}, "KADENCE_METRICS_PORT"),
    ({"KADENCE_RESYNC_SECONDS": "-1"}, "KADENCE_RESYNC_SECONDS"),
    ({"KADENCE_TENANCY": "per-user"}, "KADENCE_TENANCY"),
])
def test_a_malformed_value_fails_naming_the_variable(env, variable):
    with pytest.raises(ValidationError) as error:
        Settings.from_env(env)
    assert variable in str(error.value)


def test_storage_env_carries_the_s3_variables_that_are_set():
    s = Settings.from_env({"KADENCE_S3_ENDPOINT": "minio:9000", "KADENCE_S3_ACCESS_KEY": "a",
                           "KADENCE_S3_SECRET_KEY": "b", "KADENCE_WORKLOAD_IMAGE": "kadence:1"})
    assert s.storage_env() == {"KADENCE_S3_ENDPOINT": "minio:9000", "KADENCE_S3_ACCESS_KEY": "a",
                               "KADENCE_S3_SECRET_KEY": "b", "KADENCE_S3_BUCKET": "kadence",
                               "KADENCE_S3_SECURE": "false"}
