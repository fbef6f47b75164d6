"""Checks of `metadata` that kube-apiserver makes on every object (ValidateObjectMeta), with
its wording: names, generateName, labels and annotations."""

from __future__ import annotations

import re
from typing import Any

from . import causes
from .causes import Cause

DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + r"(\." + DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN = re.compile("^" + DNS1123_SUBDOMAIN_FMT + "$")
_DNS1123_LABEL = re.compile("^" + DNS1123_LABEL_FMT + "$")
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME = re.compile("^" + _QUALIFIED_NAME_FMT + "$")
_LABEL_VALUE_FMT = "(" + _QUALIFIED_NAME_FMT + ")?"
_LABEL_VALUE = re.compile("^" + _LABEL_VALUE_FMT + "$")
_TOTAL_ANNOTATION_SIZE_LIMIT = 256 * (1 << 10)


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def regex_error(message: str, fmt: str, *examples: str) -> str:
    """Go's RegexError, double spaces between examples included."""
    if examples:
        shown = " or ".join(f"'{example}', " for example in examples)
        return f"{message} (e.g. {shown}regex used for validation is '{fmt}')"
    return f"{message} (regex used for validation is '{fmt}')"


def dns1123_subdomain_errors(value: str) -> list[str]:
    errors = []
    if len(value) > 253:
        errors.append(max_len_error(253))
    if not _DNS1123_SUBDOMAIN.match(value):
        errors.append(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
            "'-' or '.', and must start and end with an alphanumeric character",
            DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errors


def dns1123_label_errors(value: str) -> list[str]:
    errors = []
    if len(value) > 63:
        errors.append(max_len_error(63))
    if not _DNS1123_LABEL.match(value):
        errors.append(regex_error(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
            "'-', and must start and end with an alphanumeric character",
            DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errors


def qualified_name_errors(value: str) -> list[str]:
    """IsQualifiedName: `[prefix/]name` as label and annotation keys are."""
    errors = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors.extend("prefix part " + text for text in dns1123_subdomain_errors(prefix))
    else:
        return [regex_error(
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and "
            "must start and end with an alphanumeric character", _QUALIFIED_NAME_FMT,
            "MyName", "my.name", "123-abc") + " with an optional DNS subdomain prefix and '/' "
            "(e.g. 'example.com/MyName')"]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part " + max_len_error(63))
    if name and not _QUALIFIED_NAME.match(name):
        errors.append("name part " + regex_error(
            "must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character", _QUALIFIED_NAME_FMT, "MyName", "my.name",
            "123-abc"))
    return errors


def label_value_errors(value: str) -> list[str]:
    errors = []
    if len(value) > 63:
        errors.append(max_len_error(63))
    if not _LABEL_VALUE.match(value):
        errors.append(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', "
            "'_' or '.', and must start and end with an alphanumeric character",
            _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errors


def validate_object_meta(meta: Any, field: str = "metadata") -> list[Cause]:
    """Name (a DNS subdomain, as for custom resources), generateName, labels, annotations."""
    if not isinstance(meta, dict):
        return [causes.required(field, "")]
    found: list[Cause] = []
    for key in ("name", "generateName", "namespace"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            found.append(causes.invalid(f"{field}.{key}", meta[key], "must be of type string"))
    for key in ("labels", "annotations"):
        if meta.get(key) is not None and not isinstance(meta[key], dict):
            found.append(causes.invalid(f"{field}.{key}", meta[key], "must be of type object"))
    for key in ("finalizers", "ownerReferences"):
        if meta.get(key) is not None and not isinstance(meta[key], list):
            found.append(causes.invalid(f"{field}.{key}", meta[key], "must be of type array"))
    if found:
        return found
    name = meta.get("name") or ""
    generate_name = meta.get("generateName") or ""
    if not name and not generate_name:
        found.append(causes.required(f"{field}.name", "name or generateName is required"))
    if name:
        for message in dns1123_subdomain_errors(name):
            found.append(causes.invalid(f"{field}.name", name, message))
    elif generate_name:
        # A prefix may end with '-' (the random suffix completes it): the apiserver masks it.
        masked = generate_name[:-1] + "a" if generate_name.endswith("-") else generate_name
        for message in dns1123_subdomain_errors(masked):
            found.append(causes.invalid(f"{field}.generateName", generate_name, message))
    labels = meta.get("labels") or {}
    if isinstance(labels, dict):
        for key, value in labels.items():
            for message in qualified_name_errors(key):
                found.append(causes.invalid(f"{field}.labels", key, message))
            for message in label_value_errors(str(value)):
                found.append(causes.invalid(f"{field}.labels", value, message))
    found.extend(_finalizer_causes(meta.get("finalizers") or [], f"{field}.finalizers"))
    found.extend(_owner_reference_causes(meta.get("ownerReferences") or [],
                                         f"{field}.ownerReferences"))
    annotations = meta.get("annotations") or {}
    if isinstance(annotations, dict):
        for key in annotations:
            for message in qualified_name_errors(key.lower()):
                found.append(causes.invalid(f"{field}.annotations", key, message))
        size = sum(len(key) + len(str(value)) for key, value in annotations.items())
        if size > _TOTAL_ANNOTATION_SIZE_LIMIT:
            found.append(causes.too_long(f"{field}.annotations", _TOTAL_ANNOTATION_SIZE_LIMIT))
    return found



def _finalizer_causes(finalizers: list[Any], field: str) -> list[Cause]:
    found = []
    for finalizer in finalizers:
        for message in qualified_name_errors(str(finalizer)):
            found.append(causes.invalid(field, finalizer, message))
    if "orphan" in finalizers and "foregroundDeletion" in finalizers:
        found.append(causes.invalid(
            field, finalizers, "finalizer orphan and foregroundDeletion cannot be both set"))
    return found


def _owner_reference_causes(references: list[Any], field: str) -> list[Cause]:
    found = []
    first_controller = ""
    for reference in references:
        if not isinstance(reference, dict):
            continue
        version = str(reference.get("apiVersion") or "").rpartition("/")[2]
        if not version:
            found.append(causes.invalid(f"{field}.apiVersion", reference.get("apiVersion", ""),
                                        "version must not be empty"))
        for key in ("kind", "name", "uid"):
            if not reference.get(key):
                found.append(causes.invalid(f"{field}.{key}", reference.get(key, ""),
                                            f"{key} must not be empty"))
        if reference.get("controller"):
            current = f"{reference.get('kind', '')}/{reference.get('name', '')}"
            if first_controller:
                found.append(causes.invalid(
                    field, references, "Only one reference can have Controller set to true. "
                    f'Found "true" in references for {first_controller} and {current}'))
            else:
                first_controller = current
    return found
