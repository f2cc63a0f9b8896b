"""The Pod settings of backup and restore Jobs: ``spec.jobTemplate`` and the operator's defaults.

The operator's defaults (the chart's ``jobTemplate`` values, read from ``--job-defaults``) and a
resource's ``spec.jobTemplate`` have the same shape and pass the same checks. The resource's
settings override the defaults field by field: maps (``nodeSelector``, ``podAnnotations``,
``podLabels``, ``resources.requests``, ``resources.limits``) are merged key by key, the
resource's value winning; lists (``tolerations``, ``imagePullSecrets``), ``affinity`` and
``priorityClassName`` are replaced whole when the resource gives them (an empty list clears
the default). A default request above the resource's own limit is lowered to that limit, and a
default limit below the resource's own request is raised to it, so a merge never yields a Pod
the API server refuses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from ..engine.errors import InvalidRequestError

#: Labels the operator sets on its Jobs and Pods (and Kubernetes' Job controller its own):
#: a podLabels entry may not set them, nor anything under our group.
RESERVED_LABELS = (
    "app.kubernetes.io/managed-by", "controller-uid", "job-name",
)  # fmt: skip
RESERVED_PREFIXES = ("backup.milvus.io/", "batch.kubernetes.io/")
TOLERATION_KEYS = ("key", "operator", "value", "effect", "tolerationSeconds")
EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
AFFINITY_KEYS = ("nodeAffinity", "podAffinity", "podAntiAffinity")
RESOURCE_KEYS = ("requests", "limits")
#: A Kubernetes quantity (the pattern the API server's own schema uses).
QUANTITY = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_SUBDOMAIN = rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$"
_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_SUFFIX = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
    **{s: Decimal(1024) ** (i + 1) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
}  # fmt: skip


class JobTemplateError(InvalidRequestError):
    """A Job setting is wrong; the message names it."""


@dataclass(frozen=True)
class JobTemplate:
    """Pod settings of a Job; ``None`` (lists, affinity) means "not given": inherited."""

    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] | None = None
    affinity: dict[str, Any] | None = None
    image_pull_secrets: tuple[str, ...] | None = None
    resources: dict[str, dict[str, str]] = field(default_factory=dict)
    pod_annotations: dict[str, str] = field(default_factory=dict)
    pod_labels: dict[str, str] = field(default_factory=dict)
    priority_class_name: str = ""

    def over(self, defaults: JobTemplate) -> JobTemplate:
        """These settings over ``defaults``, by the merge rule of this module."""
        return JobTemplate(
            node_selector={**defaults.node_selector, **self.node_selector},
            tolerations=_given(self.tolerations, defaults.tolerations),
            affinity=_given(self.affinity, defaults.affinity),
            image_pull_secrets=_given(self.image_pull_secrets, defaults.image_pull_secrets),
            resources=_merged_resources(defaults.resources, self.resources),
            pod_annotations={**defaults.pod_annotations, **self.pod_annotations},
            pod_labels={**defaults.pod_labels, **self.pod_labels},
            priority_class_name=self.priority_class_name or defaults.priority_class_name,
        )


def parse_job_template(raw: Any, where: str = "spec.jobTemplate") -> JobTemplate:
    """A checked JobTemplate from its YAML form; unknown keys are refused by name."""
    if raw is None:
        return JobTemplate()
    _object(raw, where)
    parsers: dict[str, tuple[str, Callable[[Any, str], Any]]] = {
        "nodeSelector": ("node_selector", _labels),
        "tolerations": ("tolerations", _tolerations),
        "affinity": ("affinity", _affinity),
        "imagePullSecrets": ("image_pull_secrets", _pull_secrets),
        "resources": ("resources", _resources),
        "podAnnotations": ("pod_annotations", _annotations),
        "podLabels": ("pod_labels", _pod_labels),
        "priorityClassName": ("priority_class_name", _priority_class),
    }
    _known(raw, parsers, where)
    given = [(key, name, parse) for key, (name, parse) in parsers.items()
             if raw.get(key) is not None]  # fmt: skip
    values = {name: parse(raw[key], f"{where}.{key}") for key, name, parse in given}
    return JobTemplate(**values)


def quantity(text: str) -> Decimal:
    """The value of a Kubernetes quantity (``500m`` is 0.5, ``1Gi`` is 2**30)."""
    match = re.fullmatch(r"([+-]?[0-9.]+)((?:[eE][+-]?[0-9]+)|Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?",
                         text)  # fmt: skip
    if not match:
        raise JobTemplateError(f"{text!r} is not a quantity")
    number, suffix = match.group(1), match.group(2) or ""
    try:
        if suffix[:1] in ("e", "E"):
            return Decimal(number + suffix)
        return Decimal(number) * _SUFFIX[suffix]
    except InvalidOperation:
        raise JobTemplateError(f"{text!r} is not a quantity") from None


# ---- merging -------------------------------------------------------------------------------


def _given(value: Any, default: Any) -> Any:
    return default if value is None else value


def _merged_resources(
    defaults: dict[str, dict[str, str]], own: dict[str, dict[str, str]]
) -> dict[str, dict[str, str]]:
    """Requests and limits merged by resource name; a default never contradicts an own value."""
    requests = {**defaults.get("requests", {}), **own.get("requests", {})}
    limits = {**defaults.get("limits", {}), **own.get("limits", {})}
    for name in set(requests) & set(limits):
        if quantity(requests[name]) > quantity(limits[name]):
            if name in own.get("requests", {}):
                limits[name] = requests[name]
            else:
                requests[name] = limits[name]
    merged = {"requests": requests, "limits": limits}
    return {key: value for key, value in merged.items() if value}


# ---- checks --------------------------------------------------------------------------------


def _fail(where: str, problem: str) -> JobTemplateError:
    return JobTemplateError(f"{where}: {problem}")


def _object(raw: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise _fail(where, "must be an object")
    return raw


def _known(raw: Mapping[str, Any], known: Any, where: str) -> None:
    unknown = [key for key in raw if key not in known]
    if unknown:
        raise _fail(f"{where}.{unknown[0]}", f"unknown field (the fields are: {', '.join(known)})")


def _string_map(raw: Any, where: str) -> dict[str, str]:
    _object(raw, where)
    for key, value in raw.items():
        if not isinstance(value, str):
            raise _fail(f"{where}.{key}", "must be a string (quote numbers and booleans)")
    return dict(raw)


def _check_key(key: str, where: str) -> None:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not re.match(DNS_SUBDOMAIN, prefix)):
        raise _fail(f"{where}.{key}", "the prefix must be a DNS subdomain, e.g. example.com")
    if len(name) > 63 or not re.fullmatch(_NAME, name):
        raise _fail(
            f"{where}.{key}",
            "a name of at most 63 letters, digits, '-', '_' or '.', starting and ending with "
            "a letter or digit (with an optional DNS prefix and '/')",
        )


def _labels(raw: Any, where: str) -> dict[str, str]:
    labels = _string_map(raw, where)
    for key, value in labels.items():
        _check_key(key, where)
        if value and (len(value) > 63 or not re.fullmatch(_NAME, value)):
            raise _fail(f"{where}.{key}", f"{value!r} is not a valid label value")
    return labels


def _pod_labels(raw: Any, where: str) -> dict[str, str]:
    labels = _labels(raw, where)
    for key in labels:
        if key in RESERVED_LABELS or key.startswith(RESERVED_PREFIXES):
            raise _fail(f"{where}.{key}", "the operator or the Job controller sets this label")
    return labels


def _annotations(raw: Any, where: str) -> dict[str, str]:
    annotations = _string_map(raw, where)
    for key in annotations:
        _check_key(key, where)
    return annotations


def _list(raw: Any, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise _fail(where, "must be a list")
    return raw


def _tolerations(raw: Any, where: str) -> tuple[dict[str, Any], ...]:
    return tuple(_toleration(t, f"{where}[{i}]") for i, t in enumerate(_list(raw, where)))


def _toleration(raw: Any, where: str) -> dict[str, Any]:
    _known(_object(raw, where), TOLERATION_KEYS, where)
    operator, effect = raw.get("operator", "Equal"), raw.get("effect", "")
    if operator not in ("Equal", "Exists"):
        raise _fail(f"{where}.operator", f"must be Equal or Exists, not {operator!r}")
    if effect not in ("", *EFFECTS):
        raise _fail(f"{where}.effect", f"must be one of {', '.join(EFFECTS)}, not {effect!r}")
    if operator == "Exists" and raw.get("value"):
        raise _fail(f"{where}.value", "must be empty with operator Exists")
    if not raw.get("key") and operator != "Exists":
        raise _fail(f"{where}.key", "an empty key needs operator Exists (tolerate every taint)")
    seconds = raw.get("tolerationSeconds")
    if seconds is not None and (effect != "NoExecute" or not isinstance(seconds, int)):
        raise _fail(f"{where}.tolerationSeconds", "an integer, with effect NoExecute only")
    for key in ("key", "value"):
        if not isinstance(raw.get(key, ""), str):
            raise _fail(f"{where}.{key}", "must be a string")
    return dict(raw)


def _affinity(raw: Any, where: str) -> dict[str, Any]:
    _known(_object(raw, where), AFFINITY_KEYS, where)
    for key, value in raw.items():
        _object(value, f"{where}.{key}")
    return dict(raw)


def _pull_secrets(raw: Any, where: str) -> tuple[str, ...]:
    names = []
    for i, entry in enumerate(_list(raw, where)):
        at = f"{where}[{i}]"
        _known(_object(entry, at), ("name",), at)
        names.append(_dns_name(entry.get("name"), f"{at}.name"))
    return tuple(names)


def _resources(raw: Any, where: str) -> dict[str, dict[str, str]]:
    _known(_object(raw, where), RESOURCE_KEYS, where)
    out = {}
    for key, section in raw.items():
        out[key] = {name: _quantity(value, f"{where}.{key}.{name}")
                    for name, value in _object(section, f"{where}.{key}").items()}  # fmt: skip
    requests, limits = out.get("requests", {}), out.get("limits", {})
    for name in set(requests) & set(limits):
        if quantity(requests[name]) > quantity(limits[name]):
            raise _fail(f"{where}.requests.{name}", f"must not exceed limits.{name}")
    return {key: value for key, value in out.items() if value}


def _quantity(value: Any, where: str) -> str:
    text = str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not re.match(QUANTITY, text):
        raise _fail(where, f"{value!r} is not a quantity (e.g. 500m, 2, 512Mi, 4Gi)")
    return text


def _priority_class(raw: Any, where: str) -> str:
    return _dns_name(raw, where) if raw != "" else ""


def _dns_name(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or len(raw) > 253 or not re.match(DNS_SUBDOMAIN, raw):
        raise _fail(where, f"{raw!r} is not a valid name (lower case letters, digits, '-', '.')")
    return raw
