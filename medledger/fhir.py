"""Record content intake: FHIR validation and attachment content types.

FHIR resources are validated with ``fhir.resources`` 8.x. Its top-level package models FHIR R5;
medledger uses the **R4B** models (``fhir.resources.R4B``, FHIR 4.3.0), the release closest to
the R4 most health systems exchange: R4B is backward compatible with R4 for the resources medledger
categorises.

Error messages quote the validation problems by field path and reason only; values from the
resource are never included (they are health data).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from medledger.codes import Category
from medledger.errors import RecordFormatError

__all__ = [
    "FHIR_VERSION",
    "RESOURCE_CATEGORIES",
    "FhirSummary",
    "category_for_resource_type",
    "detect_content_type",
    "parse_json",
    "validate_fhir",
]

#: The FHIR release the models implement (R4B).
FHIR_VERSION = "4.3.0"

#: medledger category of each FHIR resource type it knows how to file.
RESOURCE_CATEGORIES: dict[str, Category] = {
    "Patient": Category.DEMOGRAPHICS,
    "AllergyIntolerance": Category.ALLERGIES,
    "MedicationStatement": Category.MEDICATIONS,
    "MedicationRequest": Category.MEDICATIONS,
    "Medication": Category.MEDICATIONS,
    "Condition": Category.CONDITIONS,
    "Observation": Category.OBSERVATIONS,
    "DiagnosticReport": Category.OBSERVATIONS,
    "ImagingStudy": Category.IMAGING,
    "MolecularSequence": Category.GENOMICS,
    "Device": Category.DEVICE_DATA,
    "DeviceMetric": Category.DEVICE_DATA,
    "Procedure": Category.PROCEDURES,
    "Immunization": Category.IMMUNIZATIONS,
    "DocumentReference": Category.CLINICAL_DOCUMENTS,
    "Composition": Category.CLINICAL_DOCUMENTS,
}

_MAX_MESSAGE = 600
_MAX_ERRORS = 5


@dataclass(frozen=True)
class FhirSummary:
    """What medledger needs to know about a validated FHIR document.

    ``resource_count`` counts the resources it carries: 1 for a single resource, the resources of
    all entries (nested Bundles flattened) for a Bundle. ``resource_types`` lists their distinct
    types, sorted. ``category`` is inferred from those types: the category if all map to the same
    one, else None (mixed or unknown types, or an empty Bundle).
    """

    resource_type: str
    id: str | None
    resource_count: int
    category: Category | None
    resource_types: tuple[str, ...]
    fhir_version: str = FHIR_VERSION


def category_for_resource_type(resource_type: str) -> Category | None:
    """The medledger category of a FHIR resource type, or None if medledger has no mapping."""
    return RESOURCE_CATEGORIES.get(resource_type)


def _redact(message: str, value: object) -> str:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        text = str(value)
        if len(text) >= 2 and text in message:
            message = message.replace(text, "<value>")
    return message


def _describe(exc: ValidationError) -> str:
    """Field paths and reasons of a pydantic error, without any input values."""
    errors = exc.errors(include_url=False, include_context=False)
    parts = []
    for err in errors[:_MAX_ERRORS]:
        loc = ".".join(str(p)[:40] for p in err.get("loc", ())) or "(resource)"
        message = _redact(str(err.get("msg", "invalid")), err.get("input"))
        parts.append(f"{loc}: {message}")
    text = "; ".join(parts)
    if len(errors) > _MAX_ERRORS:
        text += f" (and {len(errors) - _MAX_ERRORS} more)"
    if len(text) > _MAX_MESSAGE:
        text = text[: _MAX_MESSAGE - 1] + "…"
    return text


def _model_class(resource_type: str) -> Any:
    from fhir.resources.R4B import get_fhir_model_class

    try:
        return get_fhir_model_class(resource_type)
    except (ValueError, AttributeError):
        raise RecordFormatError(
            f"'{resource_type[:64]}' is not a FHIR R4B resource type; check the resourceType field"
        ) from None


def _resource_types(document: Any) -> Iterator[tuple[str, Any]]:
    """Every ``resourceType`` in a parsed document with where it is (``entry[2].resource``): Bundle
    entries, contained resources and any other nested resource (walked without recursion, so any
    depth the JSON parser accepted is fine)."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, obj = stack.pop()
        if isinstance(obj, dict):
            if "resourceType" in obj:
                yield path or "(top level)", obj["resourceType"]
            stack.extend((f"{path}.{key}" if path else str(key), value) for key, value in reversed(obj.items()))
        elif isinstance(obj, list):
            stack.extend((f"{path}[{index}]", value) for index, value in reversed(list(enumerate(obj))))


def _check_resource_types(obj: dict[str, Any]) -> None:
    """Each nested resource names a type the R4B models know (the models fail on an unknown one in a
    Bundle entry with a bare KeyError)."""
    for where, resource_type in _resource_types(obj):
        if where == "(top level)":
            continue
        if not isinstance(resource_type, str) or not resource_type:
            raise RecordFormatError(f"the resource at {where[:120]} has no valid 'resourceType'")
        try:
            _model_class(resource_type)
        except RecordFormatError:
            raise RecordFormatError(
                f"'{resource_type[:64]}' at {where[:120]} is not a FHIR R4B resource type; check its resourceType"
            ) from None


def _leaves(resource: Any) -> Iterator[Any]:
    """The non-Bundle resources of a parsed resource (itself, or a Bundle's entries, flattened)."""
    if resource.get_resource_type() != "Bundle":
        yield resource
        return
    for entry in resource.entry or ():
        if entry.resource is not None:
            yield from _leaves(entry.resource)


def parse_json(data: bytes | bytearray | str) -> Any:
    """JSON text parsed, or :class:`RecordFormatError` saying where it broke (line and column),
    without quoting it. An empty or blank document is refused as such."""
    try:
        text = bytes(data).decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    except UnicodeDecodeError:
        raise RecordFormatError("FHIR input is not UTF-8 text; FHIR JSON must be UTF-8") from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise RecordFormatError("the record is empty (nothing but whitespace): nothing to store")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        cut = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated")
        ending = " (the document ends before it is complete: is it cut short?)" if cut else ""
        raise RecordFormatError(
            f"FHIR input is not valid JSON: {exc.msg.removesuffix(' at')} at line {exc.lineno} column {exc.colno}"
            f"{ending}"
        ) from None
    except RecursionError:
        raise RecordFormatError("FHIR input is not usable JSON: it is nested too deeply") from None


def validate_fhir(data: bytes | str | dict[str, Any]) -> FhirSummary:
    """Validate a FHIR R4B resource or Bundle given as JSON bytes/text or a parsed dict.

    Raises RecordFormatError if the input is not JSON, not a FHIR resource, or fails validation;
    the message gives line/column or field paths and reasons, never values.
    """
    obj = parse_json(data) if isinstance(data, (bytes, bytearray, str)) else data
    if not isinstance(obj, dict):
        raise RecordFormatError("FHIR input must be a JSON object (a resource or a Bundle)")
    resource_type = obj.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise RecordFormatError("FHIR input has no 'resourceType'; it is not a FHIR resource")
    model = _model_class(resource_type)
    _check_resource_types(obj)
    try:
        resource = model.model_validate(obj)
    except ValidationError as exc:
        raise RecordFormatError(f"invalid FHIR R4B {resource_type}: {_describe(exc)}") from None
    except (ValueError, TypeError, LookupError, AttributeError, RecursionError) as exc:
        # the models' own failures on input they do not expect: still a refusal of the input
        raise RecordFormatError(
            f"invalid FHIR R4B {resource_type}: the validator rejected it ({type(exc).__name__})"
        ) from None
    leaves = list(_leaves(resource))
    types = sorted({leaf.get_resource_type() for leaf in leaves})
    categories = {category_for_resource_type(t) for t in types}
    category = categories.pop() if len(categories) == 1 else None
    return FhirSummary(
        resource_type=resource_type,
        id=getattr(resource, "id", None),
        resource_count=len(leaves),
        category=category,
        resource_types=tuple(types),
    )


# --- attachments ---------------------------------------------------------------------------------
OCTET_STREAM = "application/octet-stream"

_OVERRIDE_ALIASES = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "dicom": "application/dicom",
    "dcm": "application/dicom",
    "csv": "text/csv",
    "json": "application/json",
    "fhir": "application/fhir+json",
    "fhir+json": "application/fhir+json",
    "text": "text/plain",
    "txt": "text/plain",
    "binary": OCTET_STREAM,
}
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_SNIFF_BYTES = 8192
_MAX_JSON_PARSE = 16 * 1024 * 1024


def _override(content_type: str) -> str:
    text = content_type.strip().lower()
    if text in _OVERRIDE_ALIASES:
        return _OVERRIDE_ALIASES[text]
    if _MIME.fullmatch(text):
        return text
    raise RecordFormatError(
        f"{content_type!r} is not a content type; give a MIME type such as application/pdf or one of: "
        + ", ".join(sorted(_OVERRIDE_ALIASES))
    )


def _decode_text(head: bytes, complete: bool) -> str | None:
    """``head`` as UTF-8 text, or None if it looks binary. A multi-byte character cut at the end
    of an incomplete sample is tolerated."""
    if b"\x00" in head:
        return None
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not complete and exc.start >= len(head) - 3:
            try:
                return head[: exc.start].decode("utf-8")
            except UnicodeDecodeError:
                return None
        return None


def _json_type(path: Path, size: int, head: str) -> str | None:
    if size <= _MAX_JSON_PARSE:
        try:
            obj = json.loads(path.read_bytes().removeprefix(b"\xef\xbb\xbf"))
        except (ValueError, UnicodeDecodeError):
            return None
        return "application/fhir+json" if isinstance(obj, dict) and "resourceType" in obj else "application/json"
    return "application/fhir+json" if '"resourceType"' in head else "application/json"


def _looks_like_csv(text: str, complete: bool) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    if not complete and len(lines) > 1:
        lines = lines[:-1]  # the last sampled line may be cut
    lines = lines[:20]
    if len(lines) < 2:
        return False
    for delimiter in (",", ";", "\t"):
        counts = {len(row) for row in csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)}
        if len(counts) == 1 and counts.pop() >= 2:
            return True
    return False


def detect_content_type(path: str | os.PathLike[str], override: str | None = None) -> str:
    """The MIME type of an attachment: by content, or ``override`` when given.

    Recognises PDF, PNG, JPEG, DICOM (``DICM`` at offset 128), FHIR JSON
    (``application/fhir+json``), other JSON (anything named ``.json`` or starting with ``{`` or ``[``,
    whether or not it parses: the validator says where it does not), CSV (also ``;``/tab separated),
    and plain UTF-8 text; anything else is ``application/octet-stream``. ``override`` may be a MIME type or a short name
    (``pdf``, ``dicom``, ``csv``, ``fhir``, ``text``...). Raises RecordFormatError if the file cannot
    be read or the override is not a content type.
    """
    if override is not None:
        return _override(override)
    file = Path(path)
    try:
        size = file.stat().st_size
        with file.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError as exc:
        raise RecordFormatError(f"cannot read attachment {file}: {exc.strerror or exc}") from None
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[128:132] == b"DICM":
        return "application/dicom"
    complete = size <= len(head)
    text = _decode_text(head.removeprefix(b"\xef\xbb\xbf"), complete)
    if text is None:
        return OCTET_STREAM
    if text.lstrip()[:1] in ("{", "[") or file.suffix.lower() == ".json":
        # named or looking like JSON: JSON, and a document that does not parse is refused by the
        # validator with the line and column where it broke (not stored as text)
        return _json_type(file, size, text) or "application/json"
    if file.suffix.lower() in (".csv", ".tsv") or _looks_like_csv(text, complete):
        return "text/csv"
    return "text/plain"
