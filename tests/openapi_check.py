"""Check local-broker HTTP responses against Alpaca's official OpenAPI 3.0 specs.

The specs live in ``tests/openapi/`` (copied from Alpaca's published specs: see
``tests/openapi/SOURCE.md``; override with the ``ALPACA_OPENAPI_DIR`` environment variable). Two functions form the
public face:

- ``spec_operation(method, path)`` finds the spec, path template and operation object that a
  concrete request path such as ``/v2/orders/5f1d...`` belongs to.
- ``validate_response(method, path, status, body)`` raises ``AssertionError`` naming the
  template, the status, the JSON pointer that failed and an excerpt of the body when ``body``
  does not match the schema the spec declares for that response.

Example::

    validate_response("GET", "/v2/clock", 200, {"timestamp": "2026-01-05T15:00:00Z",
                      "is_open": True, "next_open": "2026-01-06T14:30:00Z",
                      "next_close": "2026-01-05T21:00:00Z"})

Schemas are validated with openapi-schema-validator's ``OAS30Validator`` (``nullable``, OAS
``allOf/oneOf/anyOf``) over a ``referencing`` registry holding both spec documents, so every
``$ref`` resolves inside its own document; an unresolvable ``$ref`` is an error, never a pass.
Formats are checked (``date-time``, ``date``, ``uuid``, ``decimal``, integer widths, ...); a
format this module does not know makes loading fail rather than go unchecked.

The spec is followed literally except for the few narrowly scoped ``ALLOWANCES`` below, each
of which first asserts that the quirk it works around is still in the spec.

Speed: validators are built once per (template, method, status). Each schema is also compiled
with fastjsonschema as a pre-check that can only say "valid" (see "fast path" below), so
10,000 typical responses take well under a second and a 10,000-bar page about 40 ms.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

try:  # optional accelerator; verdicts are identical without it, only slower
    import fastjsonschema
except ImportError:  # pragma: no cover
    fastjsonschema = None
from jsonschema import FormatChecker
from jsonschema.exceptions import ValidationError, best_match, relevance
from jsonschema.validators import extend
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT4

SPEC_FILES = {"trading": "trading-api.json", "market-data": "market-data-api.json"}
_URI = "urn:alpaca-openapi:{}"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_EXCERPT = 300

# Alpaca's error body. The specs declare most 4xx/5xx answers without a schema; Alpaca answers
# every one of them with this shape (extra keys such as "buying_power" do occur, so allowed).
ERROR_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
}


def spec_dir() -> Path:
    """The directory holding trading-api.json and market-data-api.json."""
    env = os.environ.get("ALPACA_OPENAPI_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent / "openapi"


# --------------------------------------------------------------------------- formats

_RE_DECIMAL = re.compile(r"-?\d+(\.\d+)?")
_RE_ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


def _is_decimal(instance: object) -> bool:
    """Alpaca's ``format: decimal``: a plain decimal string ("174.78"), no exponent, no NaN."""
    if isinstance(instance, str):
        return bool(_RE_DECIMAL.fullmatch(instance))
    return True  # a JSON number carrying format decimal is judged by `type` alone


def _is_uint(bits: int) -> Callable[[object], bool]:
    def check(instance: object) -> bool:
        if isinstance(instance, bool) or not isinstance(instance, int):
            return True
        return 0 <= instance < 1 << bits

    return check


def _is_ulid(instance: object) -> bool:
    return not isinstance(instance, str) or bool(_RE_ULID.fullmatch(instance))


def _format_checker() -> FormatChecker:
    base = FormatChecker(formats=("date-time", "date", "uuid"))
    if "date-time" not in base.checkers:  # jsonschema only checks it with rfc3339-validator
        raise RuntimeError("format 'date-time' is not checkable: install rfc3339-validator")
    for name in ("int32", "int64", "float", "double"):
        base.checks(name)(oas30_format_checker.checkers[name][0])
    for name, fn in {"uint32": _is_uint(32), "uint64": _is_uint(64), "decimal": _is_decimal, "ulid": _is_ulid}.items():
        base.checks(name)(fn)
    return base


FORMAT_CHECKER = _format_checker()
# Formats the specs use that carry no checkable rule for a JSON response body.
UNCHECKED_FORMATS = frozenset({"binary", "uri"})  # binary: image bodies; uri: news links only


def _nullable_type(validator: Any, data_type: str, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    """OAS 3.0 ``type`` with ``nullable``, reporting a forbidden null once and plainly."""
    if instance is None and schema.get("nullable") is True:
        return
    if not validator.is_type(instance, data_type):
        hint = " (the spec does not mark it nullable)" if instance is None else ""
        yield ValidationError(f"{instance!r} is not of type {data_type!r}{hint}")


# openapi-schema-validator's OAS 3.0 validator, with the clearer null message above.
Validator = extend(OAS30Validator, {"type": _nullable_type})


# --------------------------------------------------------------------------- allowances


@dataclass(frozen=True)
class Allowance:
    """A narrowly scoped deviation from the literal spec, with the reason it is right.

    ``expected`` holds keys of the node at ``pointer`` as the spec has them today: when the
    spec changes there, loading fails so that the allowance is re-examined, not kept blindly.
    """

    name: str
    spec: str
    pointer: str
    expected: dict[str, Any]
    patch: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]  # (node, doc) -> node
    reason: str


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _by_activity_type(_node: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """Activity items chosen by ``activity_type``: FILL is a trade activity, the rest are not."""
    mapping = {
        t: "#/components/schemas/" + ("TradingActivities" if t == "FILL" else "NonTradeActivities")
        for t in doc["components"]["schemas"]["ActivityType"]["enum"]
    }
    return {
        "type": "object",
        "required": ["activity_type"],
        "properties": {"activity_type": _ref("ActivityType")},
        "anyOf": [_ref("TradingActivities"), _ref("NonTradeActivities")],
        "discriminator": {"propertyName": "activity_type", "mapping": mapping},
    }


def _nullable_copy(node: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """``{"$ref": X}`` -> a copy of X with ``nullable: true`` (OAS 3.0 ignores $ref siblings)."""
    target = doc["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return {**copy.deepcopy(target), "nullable": True}


def _close_position_result(node: dict[str, Any], _doc: dict[str, Any]) -> dict[str, Any]:
    order_result = {"properties": {"status": {"minimum": 200, "maximum": 299}, "body": _ref("Order")}}
    failed_result = {"properties": {"status": {"minimum": 400, "maximum": 599}, "body": ERROR_BODY_SCHEMA}}
    properties = {**node["properties"], "body": {"type": "object"}}
    return {**node, "properties": properties, "anyOf": [order_result, failed_result]}


_ACTIVITIES = "/paths/~1v2~1account~1activities{}/get/responses/200/content/application~1json/schema/items"
_SNAPSHOT = "/components/schemas/stock_snapshot/properties/"

ALLOWANCES: tuple[Allowance, ...] = (
    # A1. GET /v2/account/activities/{activity_type} says oneOf [TradingActivities,
    # NonTradeActivities]. Neither has a required key, so every object matches both and oneOf
    # rejects every real answer; the list endpoint's anyOf accepts nearly anything as a
    # TradingActivities. The intent (Alpaca's docs): activity_type FILL -> TradingActivities,
    # any other ActivityType -> NonTradeActivities. So activity_type must be present.
    Allowance(
        "A1",
        "trading",
        _ACTIVITIES.format("~1{activity_type}"),
        {"oneOf": [_ref("TradingActivities"), _ref("NonTradeActivities")]},
        _by_activity_type,
        "activities: oneOf can never pass; choose by activity_type",
    ),
    Allowance(
        "A1",
        "trading",
        _ACTIVITIES.format(""),
        {"anyOf": [_ref("TradingActivities"), _ref("NonTradeActivities")]},
        _by_activity_type,
        "activities: anyOf tests nothing; choose by activity_type",
    ),
    # A2. NonTradeActivities.date is `format: date-time`, but Alpaca sends a calendar date
    # ("2019-08-01", which is also the spec's own example for this schema). Accept both.
    Allowance(
        "A2",
        "trading",
        "/components/schemas/NonTradeActivities/properties/date",
        {"type": "string", "format": "date-time"},
        lambda node, _doc: {"type": "string", "anyOf": [{"format": "date"}, {"format": "date-time"}]},
        "NonTradeActivities.date: Alpaca sends YYYY-MM-DD",
    ),
    # A3. DELETE /v2/positions (207): each item's `body` is the closing Order when its
    # `status` is 2xx, but Alpaca's error body ({"code", "message", "available",
    # "existing_qty", "held_for_orders", "symbol"}, alpaca-py's FailedClosePositionDetails)
    # when the close failed (4xx). The spec only knows the Order case.
    Allowance(
        "A3",
        "trading",
        "/components/schemas/PositionClosedReponse",
        {"required": ["symbol", "status"]},
        _close_position_result,
        "close-all 207 items: body is an error body when status is 4xx/5xx",
    ),
    # A4/A5. Snapshots: Alpaca sends null for a part it has no data for ("prevDailyBar": null
    # for a new listing) and null for a symbol it knows nothing about ("INVALID": null); see
    # the fixtures of Alpaca's own SDK tests (alpaca-trade-api-go, alpaca-trade-api-python).
    # Only these snapshot slots become nullable; bars/quotes/trades elsewhere stay strict.
    *(
        Allowance("A4", "market-data", _SNAPSHOT + part, {"$ref": ref}, _nullable_copy, f"snapshot {part} may be null")
        for part, ref in (
            ("latestTrade", "#/components/schemas/stock_trade"),
            ("latestQuote", "#/components/schemas/stock_quote"),
            ("minuteBar", "#/components/schemas/stock_bar"),
            ("dailyBar", "#/components/schemas/stock_bar"),
            ("prevDailyBar", "#/components/schemas/stock_bar"),
        )
    ),
    Allowance(
        "A5",
        "market-data",
        "/components/schemas/stock_snapshots_resp/additionalProperties",
        {"$ref": "#/components/schemas/stock_snapshot"},
        _nullable_copy,
        "multi-symbol snapshots: an unknown symbol maps to null",
    ),
)


def _pointer_parts(pointer: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]


def _escape(part: object) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def _apply(docs: dict[str, dict[str, Any]], allowance: Allowance) -> None:
    *parents, last = _pointer_parts(allowance.pointer)
    node: Any = docs[allowance.spec]
    for part in parents:
        node = node[part]
    current = node.get(last)
    if not isinstance(current, dict) or any(current.get(k) != v for k, v in allowance.expected.items()):
        raise RuntimeError(
            f"allowance {allowance.name} no longer matches {SPEC_FILES[allowance.spec]} at "
            f"{allowance.pointer}: the spec changed; re-check the quirk and update or drop it"
        )
    node[last] = allowance.patch(current, docs[allowance.spec])


# --------------------------------------------------------------------------- specs & routes


@dataclass(frozen=True)
class _Route:
    spec: str
    template: str
    regex: re.Pattern[str]
    rank: tuple[int, ...]  # per segment: 0 literal, 1 templated; smaller is more specific


@dataclass(frozen=True)
class _Specs:
    docs: dict[str, dict[str, Any]]
    registry: Registry
    routes: dict[int, list[_Route]]  # by segment count


def _compile_template(template: str) -> tuple[re.Pattern[str], tuple[int, ...]]:
    rank = []
    pattern = []
    for segment in template.split("/"):
        pieces = re.split(r"(\{[^}/]+\})", segment)
        pattern.append("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in pieces if p))
        rank.append(1 if "{" in segment else 0)
    return re.compile("/".join(pattern)), tuple(rank)


def _check_formats(node: Any, where: str) -> None:
    known = set(FORMAT_CHECKER.checkers) | UNCHECKED_FORMATS
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            fmt = item.get("format")
            if isinstance(fmt, str) and "type" in item and fmt not in known:
                raise RuntimeError(f"{where}: format {fmt!r} has no checker; add one")
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


@cache
def _specs() -> _Specs:
    """Both specs, allowances applied, loaded once per process from ``spec_dir()``."""
    directory = spec_dir()
    docs = {}
    for name, filename in SPEC_FILES.items():
        path = directory / filename
        if not path.is_file():
            raise RuntimeError(
                f"Alpaca OpenAPI spec {path} not found: the specs live in tests/openapi/ "
                "(see its SOURCE.md), or set ALPACA_OPENAPI_DIR"
            )
        with open(path, encoding="utf-8") as fh:
            docs[name] = json.load(fh)
        _check_formats(docs[name], filename)
    for allowance in ALLOWANCES:
        _apply(docs, allowance)
    registry: Registry = Registry().with_resources(
        (_URI.format(name), Resource(contents=doc, specification=DRAFT4)) for name, doc in docs.items()
    )
    routes: dict[int, list[_Route]] = {}
    for name, doc in docs.items():
        for template in doc["paths"]:
            regex, rank = _compile_template(template)
            routes.setdefault(len(rank), []).append(_Route(name, template, regex, rank))
    return _Specs(docs, registry.crawl(), routes)


def _normalise(path: str) -> str:
    path = path.split("?", 1)[0]
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return path


@lru_cache(maxsize=8192)
def _route(path: str) -> _Route:
    specs = _specs()
    candidates = [r for r in specs.routes.get(path.count("/") + 1, ()) if r.regex.fullmatch(path)]
    if not candidates:
        raise AssertionError(f"no path template in the Alpaca specs matches {path!r}")
    candidates.sort(key=lambda r: r.rank)
    if len(candidates) > 1 and candidates[0].rank == candidates[1].rank:
        names = ", ".join(f"{r.template} ({SPEC_FILES[r.spec]})" for r in candidates)
        raise AssertionError(f"path {path!r} is ambiguous between {names}")
    return candidates[0]


def spec_operation(method: str, path: str) -> tuple[str, str, dict[str, Any]]:
    """Find ``(spec_name, template, operation)`` for a concrete request path.

    ``spec_name`` is "trading" or "market-data". Literal templates beat templated ones segment
    by segment from the left (``/v2/stocks/bars`` beats ``/v2/stocks/{symbol}/bars``);
    ``/v2/orders:by_client_order_id`` is matched literally. Raises ``AssertionError`` when no
    template matches or the template has no such method.

    >>> spec_operation("GET", "/v2/stocks/AAPL/bars")[1]
    '/v2/stocks/{symbol}/bars'
    """
    route = _route(_normalise(path))
    item = _specs().docs[route.spec]["paths"][route.template]
    operation = item.get(method.lower())
    if operation is None:
        methods = sorted(m.upper() for m in item if m in _METHODS)
        raise AssertionError(
            f"{method.upper()} {path}: template {route.template} ({SPEC_FILES[route.spec]}) "
            f"has no {method.upper()} operation (spec has {', '.join(methods)})"
        )
    return route.spec, route.template, operation


# --------------------------------------------------------------------------- responses


@dataclass(frozen=True)
class _Plan:
    """What a (spec, template, method, status) answer must look like."""

    label: str  # "GET /v2/orders/{order_id} -> 200 (trading-api.json, response 200)"
    kind: str  # "schema" | "empty" | "error"
    validator: Any = None  # OAS30Validator: the verdict and the message
    fast: Callable[[Any], Any] | None = None  # compiled pre-check: pass means pass
    schema_ref: str = ""


def _resolve_pointer(doc: dict[str, Any], ref: str, where: str) -> Any:
    if not ref.startswith("#/"):
        raise RuntimeError(f"{where}: cannot resolve non-local $ref {ref!r}")
    node: Any = doc
    for part in _pointer_parts(ref[1:]):
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError) as exc:
            raise RuntimeError(f"{where}: unresolvable $ref {ref!r}") from exc
    return node


@cache
def _validator(spec: str, pointer: str) -> Any:
    specs = _specs()
    schema = {"$ref": f"{_URI.format(spec)}#{pointer}"}
    validator = Validator(schema, registry=specs.registry, format_checker=FORMAT_CHECKER)
    _check_refs(specs, spec, pointer)
    return validator


@cache
def _error_validators() -> tuple[Any, Callable[[Any], Any] | None]:
    slow = Validator(ERROR_BODY_SCHEMA, format_checker=FORMAT_CHECKER)
    return slow, _compile_fast(ERROR_BODY_SCHEMA, {})


def _check_refs(specs: _Specs, spec: str, pointer: str) -> None:
    """Resolve every $ref reachable from a schema now, so none can be silently skipped later."""
    doc = specs.docs[spec]
    seen: set[str] = set()
    todo = [pointer]
    while todo:
        ptr = todo.pop()
        if ptr in seen:
            continue
        seen.add(ptr)
        stack = [_resolve_pointer(doc, "#" + ptr, f"{SPEC_FILES[spec]} {ptr}")]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str):
                    _resolve_pointer(doc, ref, f"{SPEC_FILES[spec]} {ptr}")
                    todo.append(ref[1:])
                mapping = node.get("discriminator", {}).get("mapping", {})
                todo.extend(r[1:] for r in mapping.values())
                stack.extend(v for k, v in node.items() if k not in ("example", "examples") and not k.startswith("x-"))
            elif isinstance(node, list):
                stack.extend(node)


def _pick_status(responses: dict[str, Any], status: int) -> str | None:
    if str(status) in responses:
        return str(status)
    for key in responses:
        if len(key) == 3 and key[0] == str(status)[0] and key[1:].upper() == "XX":
            return key
    return "default" if "default" in responses else None


def _schema_name(schema: Any, pointer: str) -> str:
    """``#/components/schemas/Order``, ``array of #/components/schemas/Order`` or the pointer."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return schema["$ref"]
        items = schema.get("items")
        if schema.get("type") == "array" and isinstance(items, dict) and "$ref" in items:
            return "array of " + items["$ref"]
    return pointer


@cache
def _plan(spec: str, template: str, method: str, status: int) -> _Plan:
    doc = _specs().docs[spec]
    filename = SPEC_FILES[spec]
    op_ptr = f"/paths/{_escape(template)}/{method}"
    operation = doc["paths"][template][method]
    responses = operation.get("responses", {})
    key = _pick_status(responses, status)
    head = f"{method.upper()} {template} -> {status}"
    if key is None:
        if status >= 400:
            return _Plan(f"{head} ({filename}: status not declared; Alpaca error body)", "error")
        declared = ", ".join(responses) or "none"
        raise AssertionError(f"{head}: status {status} is not declared in {filename} (declared: {declared})")
    ptr = f"{op_ptr}/responses/{_escape(key)}"
    response = responses[key]
    while "$ref" in response:  # e.g. #/components/responses/400
        ptr = response["$ref"][1:]
        response = _resolve_pointer(doc, response["$ref"], f"{filename} {head}")
    label = f"{head} ({filename}, response {key})"
    content = response.get("content")
    if not content:
        return _Plan(label, "error" if status >= 400 else "empty")
    media = next((m for m in content if m == "application/json" or m.endswith("+json")), None)
    if media is None:
        raise AssertionError(f"{label}: declares only {sorted(content)}; not a JSON response")
    if "schema" not in content[media]:
        raise AssertionError(f"{label}: {media} has no schema")
    schema_ptr = f"{ptr}/content/{_escape(media)}/schema"
    schema_ref = _schema_name(content[media]["schema"], "#" + schema_ptr)
    try:
        validator = _validator(spec, schema_ptr)
    except (RuntimeError, Unresolvable) as exc:
        raise AssertionError(f"{label}: schema cannot be resolved: {exc}") from exc
    fast = _compile_fast({"$ref": "#" + schema_ptr}, doc)
    return _Plan(label, "schema", validator, fast, schema_ref)


# --------------------------------------------------------------------------- fast path
# OAS30Validator costs ~75 us per market-data bar, so a 10,000-bar page takes most of a second.
# Each schema is therefore also translated to plain draft-04 JSON Schema and compiled with
# fastjsonschema (~15x faster). The compiled check only ever answers "valid" for bodies the
# OAS30Validator accepts too (the translation is exact or stricter, and anything it cannot
# translate exactly gets no fast path); a body it rejects is re-judged by OAS30Validator,
# whose verdict and messages are the ones reported. tests/test_openapi_check.py checks the
# two agree over thousands of mutated bodies.


class _NoFastPath(Exception):
    """The schema uses something the draft-04 translation would not reproduce exactly."""


_DRAFT4 = "http://json-schema.org/draft-04/schema#"
_SAME_IN_DRAFT4 = frozenset(
    {
        "type",
        "enum",
        "required",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "pattern",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minProperties",
        "maxProperties",
        "multipleOf",
    }
)
_ANNOTATIONS = frozenset(
    {
        "description",
        "title",
        "example",
        "examples",
        "deprecated",
        "externalDocs",
        "default",
    }
)
# Integer formats checked by value: the same bounds as openapi-schema-validator's checks.
_INT_BOUNDS = {
    "int32": (-(1 << 31), (1 << 31) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
    "uint32": (0, (1 << 32) - 1),
    "uint64": (0, (1 << 64) - 1),
}
_ALWAYS_TRUE_FORMATS = frozenset({"double", "float"}) | UNCHECKED_FORMATS


def _draft4(node: Any, doc: dict[str, Any], refs: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(node, dict):
        raise _NoFastPath(f"schema {node!r}")
    if "$ref" in node:
        ref = node["$ref"]
        if ref in refs:
            raise _NoFastPath(f"recursive {ref}")
        target = _draft4(_resolve_pointer(doc, ref, "fast path"), doc, (*refs, ref))
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return {"allOf": [target, _draft4(rest, doc, refs)]} if rest else target
    out: dict[str, Any] = {}
    extra: list[dict[str, Any]] = []
    for key, value in node.items():
        if key in _SAME_IN_DRAFT4:
            out[key] = value
        elif key == "properties":
            out[key] = {name: _draft4(sub, doc, refs) for name, sub in value.items()}
        elif key in ("items", "not") or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = _draft4(value, doc, refs)
        elif key == "additionalProperties" and isinstance(value, bool):
            out[key] = value
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [_draft4(sub, doc, refs) for sub in value]
        elif key == "format":
            if value in _INT_BOUNDS:
                low, high = _INT_BOUNDS[value]
                extra.append({"minimum": low, "maximum": high})
            elif value in FORMAT_CHECKER.checkers and value not in _ALWAYS_TRUE_FORMATS:
                out[key] = value
        elif key == "nullable" or key in _ANNOTATIONS or key.startswith("x-"):
            pass
        else:  # discriminator, readOnly/writeOnly (they change `required`), unknown keywords
            raise _NoFastPath(key)
    if node.get("nullable") is True and isinstance(node.get("type"), str):
        out["type"] = [node["type"], "null"]
    return {"allOf": [out, *extra]} if extra else out


def _string_format(name: str) -> Callable[[str], bool]:
    return lambda value: FORMAT_CHECKER.conforms(value, name)


def _compile_fast(schema: dict[str, Any], doc: dict[str, Any]) -> Callable[[Any], Any] | None:
    if fastjsonschema is None:
        return None
    try:
        definition = {"$schema": _DRAFT4, **_draft4(schema, doc, ())}
    except _NoFastPath:
        return None
    formats = {name: _string_format(name) for name in FORMAT_CHECKER.checkers}
    try:
        return fastjsonschema.compile(definition, formats=formats, use_default=False)
    except fastjsonschema.JsonSchemaDefinitionException:
        return None


def _fast_accepts(fast: Callable[[Any], Any] | None, body: Any) -> bool:
    if fast is None:
        return False
    try:
        fast(body)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


# --------------------------------------------------------------------------- messages


def _json_pointer(error: ValidationError) -> str:
    return "".join("/" + _escape(p) for p in error.absolute_path) or "(root)"


def _excerpt(value: Any, limit: int = _EXCERPT) -> str:
    try:
        text = json.dumps(value, default=str, separators=(",", ":"))
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(error: ValidationError, indent: str = "  ") -> list[str]:
    """Lines for one error; for anyOf/oneOf, the best reason each branch failed."""
    keyword = "/".join(map(str, error.absolute_schema_path)) or "(root)"
    lines = [f"{indent}at {_json_pointer(error)}: {_short(error.message)}  [schema: {keyword}]"]
    if not error.context:
        if error.absolute_path:  # at the root, the body excerpt below shows the value
            lines.append(f"{indent}  value: {_excerpt(error.instance, 160)}")
        return lines
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    for index, subs in sorted(branches.items(), key=lambda item: str(item[0])):
        lines.append(f"{indent}  {error.validator} branch {index} fails:")
        lines.extend(_describe(best_match(subs, key=relevance), indent + "    "))
    return lines


_MAX_ERRORS = 8


def _fail(plan_label: str, what: str, errors: list[ValidationError], body: Any) -> None:
    errors.sort(key=lambda e: [str(p) for p in e.absolute_path])
    lines = [f"{plan_label}: {what} ({len(errors)} error{'s' if len(errors) > 1 else ''})"]
    for error in errors[:_MAX_ERRORS]:
        lines.extend(_describe(error))
    if len(errors) > _MAX_ERRORS:
        lines.append(f"  ... and {len(errors) - _MAX_ERRORS} more")
    lines.append(f"  body: {_excerpt(body)}")
    raise AssertionError("\n".join(lines))


# --------------------------------------------------------------------------- entry point


def validate_response(method: str, path: str, status: int, body: Any) -> None:
    """Raise ``AssertionError`` unless ``body`` matches what the spec declares for the answer.

    ``path`` is the concrete request path without query string (``/v2/orders/<uuid>``,
    ``/v2/stocks/AAPL/bars``, ``/v2/orders:by_client_order_id``); ``body`` is the decoded JSON,
    or ``None`` for an empty body. The declared response is the exact status, else its
    ``2XX``-style range, else ``default``. Declared without content: the body must be ``None``
    (e.g. 204), or for 4xx/5xx must be Alpaca's error body ``{"code": int, "message": str}``,
    which is also required for any undeclared 4xx/5xx, and for a 4xx/5xx answer to a path or
    method the specs do not have (a 404 for an unknown route). An undeclared 1xx-3xx status, or
    a success answer to an unknown path or method, fails.

    The message names the template, status, JSON pointer of each failure and a body excerpt.
    """
    try:
        spec, template, _ = spec_operation(method, path)
    except AssertionError as exc:
        if int(status) < 400:
            raise
        # An error answer to a path or method the spec lacks (404/405): only its shape is known.
        plan = _Plan(f"{method.upper()} {path} -> {status} ({exc})", "error")
    else:
        plan = _plan(spec, template, method.lower(), int(status))
    if plan.kind == "empty":
        if body is not None:
            raise AssertionError(f"{plan.label}: the spec declares no content, but the body is {_excerpt(body)}")
        return
    if body is None:
        raise AssertionError(f"{plan.label}: expected a JSON body, got an empty one")
    validator, fast = (plan.validator, plan.fast) if plan.kind == "schema" else _error_validators()
    if _fast_accepts(fast, body):
        return
    errors = list(validator.iter_errors(body))
    if not errors:
        return
    what = (
        f"body does not match {plan.schema_ref}"
        if plan.kind == "schema"
        else 'error body is not Alpaca\'s {"code": int, "message": str}'
    )
    _fail(plan.label, what, errors, body)


__all__ = [
    "ERROR_BODY_SCHEMA",
    "ALLOWANCES",
    "spec_dir",
    "spec_operation",
    "validate_response",
]
