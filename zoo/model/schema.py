"""What a model description may hold, checked before anything is built from one read off disk.

A description decides what gets allocated (``embed_dim``, ``image_size``, the number of
identities ...) and which plugin code runs, so one read from a checkpoint is untrusted input: it
must be a JSON object of the known format version, with every required key, every value of
the right type, sizes within bounds no model of this project comes near, component arguments
that are plain JSON, and sizes that agree between the components. Anything else is one
``CheckpointError`` line, raised before a single tensor is allocated.
"""

from __future__ import annotations

import math
import re
from typing import Any

from zoo.errors import CheckpointError

FORMAT = "wav2pix-zoo/1"
FORMAT_FAMILY = "wav2pix-zoo/"
COMPONENT_KINDS = ("encoder", "generator", "discriminator", "fuser")  # fuser: optional
REQUIRED_COMPONENTS = ("encoder", "generator")
REQUIRED_KEYS = ("format", "components", "identities", "image_size", "sample_rate", "num_samples")

# Inclusive bounds for every size a description may declare, at the top or in a component's
# arguments. Far above any model here (wav2pix: 128-d, 64 or 128 px, 16000 samples), far below
# what would ask torch for more memory than a machine has (embed_dim 10**9 is 32 TB of weights).
SIZE_BOUNDS = {
    "image_size": (4, 1024),
    "sample_rate": (1000, 384_000),
    "num_samples": (1, 10_000_000),
    "embed_dim": (1, 16_384),
    "z_dim": (0, 16_384),
}
MAX_IDENTITIES = 100_000
MAX_INTEGER = 2**31 - 1  # any other integer argument (a width, a depth)
MAX_TEXT = 1000  # characters of any string value
MAX_LIST = 10_000  # items of any list argument
MAX_DEPTH = 4  # nesting of list arguments

COMPONENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
ARGUMENT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# PEP 508's project name: what ``pip install NAME`` can be told without surprises.
PROJECT_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]{0,98}[A-Z0-9])$", re.IGNORECASE)
VERSION_TEXT = re.compile(r"^[A-Za-z0-9.+!_-]{1,64}$")


def is_project_name(name: Any) -> bool:
    """Whether ``name`` is a valid PEP 508 distribution name (safe to print as ``pip install``)."""
    return isinstance(name, str) and bool(PROJECT_NAME.match(name))


def is_version_text(version: Any) -> bool:
    """Whether ``version`` looks like a version number and nothing else."""
    return isinstance(version, str) and bool(VERSION_TEXT.match(version))


def check_size(key: str, value: Any, where: str, source: str) -> int:
    """``value`` as an int within ``SIZE_BOUNDS[key]``, or one line naming ``where``."""
    low, high = SIZE_BOUNDS[key]
    if not _is_int(value):
        raise _malformed(source, f"{where} must be an integer, not {_kind(value)}")
    if not low <= value <= high:
        raise CheckpointError(f"{source}: its model description declares {where} {_short(value)}, outside "
                              f"[{low}, {high}]; refusing to build it")
    return value


def check_description(description: Any, source: str) -> dict:
    """Return ``description`` if it is one of ours and safe to build; else one ``CheckpointError``."""
    if not isinstance(description, dict):
        raise _malformed(source, f"it must be a JSON object, not {_kind(description)}")
    _check_format(description.get("format"), source)
    missing = [key for key in REQUIRED_KEYS if key not in description]
    if missing:
        raise _malformed(source, f"it lacks {', '.join(missing)}")
    for key in ("image_size", "sample_rate", "num_samples"):
        check_size(key, description[key], key, source)
    _check_identities(description["identities"], source)
    _check_components(description["components"], source)
    _check_agreement(description, source)
    return description


def _check_format(value: Any, source: str) -> None:
    if value == FORMAT:
        return
    if isinstance(value, str) and value.startswith(FORMAT_FAMILY):
        raise CheckpointError(f"{source}: its model description is format {_short(value)}; this version of "
                              f"wav2pix-zoo reads {FORMAT} only")
    raise CheckpointError(f"{source}: not a wav2pix-zoo model description (format {_short(value)})")


def _check_identities(identities: Any, source: str) -> None:
    if not isinstance(identities, list):
        raise _malformed(source, f"identities must be a list, not {_kind(identities)}")
    if not 1 <= len(identities) <= MAX_IDENTITIES:
        raise CheckpointError(f"{source}: its model description declares {len(identities)} identities, "
                              f"outside [1, {MAX_IDENTITIES}]; refusing to build it")
    if not all(isinstance(name, str) and 0 < len(name) <= MAX_TEXT for name in identities):
        raise _malformed(source, "identities must be non-empty strings")


def _check_components(components: Any, source: str) -> None:
    if not isinstance(components, dict):
        raise _malformed(source, f"components must be a mapping, not {_kind(components)}")
    unknown = sorted(str(kind) for kind in components if kind not in COMPONENT_KINDS)
    if unknown:
        raise _malformed(source, f"components holds unknown kind(s) {_short(', '.join(unknown))}")
    missing = [kind for kind in REQUIRED_COMPONENTS if kind not in components]
    if missing:
        raise _malformed(source, f"it lacks the {', '.join(missing)} component")
    for kind, entry in components.items():
        _check_component(kind, entry, source)


def _check_component(kind: str, entry: Any, source: str) -> None:
    where = f"components.{kind}"
    if not isinstance(entry, dict):
        raise _malformed(source, f"{where} must be a mapping, not {_kind(entry)}")
    name = entry.get("name")
    if not isinstance(name, str) or not COMPONENT_NAME.match(name):
        raise _malformed(source, f"{where}.name must be a lower_snake_case name, not {_short(name)}")
    kwargs = entry.get("kwargs")
    if not isinstance(kwargs, dict):
        raise _malformed(source, f"{where}.kwargs must be a mapping, not {_kind(kwargs)}")
    for key, value in kwargs.items():
        if not isinstance(key, str) or not ARGUMENT_NAME.match(key):
            raise _malformed(source, f"{where}.kwargs has an invalid argument name {_short(key)}")
        if key in SIZE_BOUNDS:
            check_size(key, value, f"{kind} {key}", source)
        else:
            _check_json_value(value, f"{where}.kwargs.{key}", source)
    for key in ("distribution", "version"):
        if key in entry and not (isinstance(entry[key], str) and len(entry[key]) <= MAX_TEXT):
            raise _malformed(source, f"{where}.{key} must be a short string")


def _check_json_value(value: Any, where: str, source: str, depth: int = 0) -> None:
    """A JSON scalar (finite, bounded) or a bounded list of them."""
    if value is None or isinstance(value, bool):
        return
    if _is_int(value):
        if abs(value) > MAX_INTEGER:
            raise CheckpointError(f"{source}: its model description declares {where} {_short(value)}, "
                                  f"beyond +-{MAX_INTEGER}; refusing to build it")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _malformed(source, f"{where} must be a finite number, not {value}")
        return
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise _malformed(source, f"{where} is a string of {len(value)} characters (at most {MAX_TEXT})")
        return
    if isinstance(value, list) and depth < MAX_DEPTH and len(value) <= MAX_LIST:
        for item in value:
            _check_json_value(item, where, source, depth + 1)
        return
    raise _malformed(source, f"{where} must be a JSON number, string, boolean, null or short list, "
                             f"not {_kind(value)}")


def _check_agreement(description: dict, source: str) -> None:
    """Sizes given twice (at the top and in a component's arguments) must be the same."""
    components = description["components"]
    expected = {"image_size": ("generator", "discriminator"), "sample_rate": ("encoder",),
                "num_samples": ("encoder",)}
    for key, kinds in expected.items():
        for kind in kinds:
            value = components.get(kind, {}).get("kwargs", {}).get(key, description[key])
            if value != description[key]:
                raise _malformed(source, f"{kind} {key} {value} disagrees with the model's {key} {description[key]}")
    dims = {kind: entry["kwargs"]["embed_dim"] for kind, entry in components.items() if "embed_dim" in entry["kwargs"]}
    if len(set(dims.values())) > 1:
        raise _malformed(source, "the components disagree on embed_dim ("
                         + ", ".join(f"{kind} {dim}" for kind, dim in dims.items()) + ")")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
             int: "an integer", float: "a number"}
    return names.get(type(value), type(value).__name__)


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: a crafted value must not flood the line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _malformed(source: str, detail: str) -> CheckpointError:
    return CheckpointError(f"{source}: its model description is malformed: {detail}")
