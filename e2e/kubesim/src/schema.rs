//! Structural-schema handling for custom resources: pruning, defaulting and
//! validation against a CRD version's `openAPIV3Schema`, as kube-apiserver
//! does it when a custom resource is created or updated.
//!
//! This is where kubesim decides what of a custom resource is stored and
//! whether it is accepted at all, so that a controller under test meets the
//! same 422 responses (and the same silently dropped fields) as on a real
//! cluster. [`prune_default_validate`] runs the three steps in order:
//!
//! 1. **Pruning.** Fields not declared by `properties` or
//!    `additionalProperties` are removed, unless the enclosing node has
//!    `x-kubernetes-preserve-unknown-fields: true` (declared fields below such
//!    a node are still pruned by their own schema; the flag on an array
//!    reaches its items). At the resource root and in every
//!    `x-kubernetes-embedded-resource` object, `apiVersion` and `kind` (when
//!    strings) and `metadata` (when an object) are always kept. A `null` in a
//!    declared field whose schema is not `nullable: true` is dropped, unless
//!    that schema has a `default`, which then replaces it.
//! 2. **Defaulting.** A `default` is applied to every declared property that
//!    is missing (or a non-nullable `null`) in an object that exists, to
//!    non-nullable `null` values of `additionalProperties` and to `null` list
//!    items. The inserted default is itself pruned and defaulted.
//! 3. **Validation.** Every error is collected and reported as the API server
//!    words it in a 422 Status's `details.causes` (see [`FieldError`]).
//!    `apiVersion`, `kind` and `metadata` at the root and in embedded resources
//!    are not validated against the schema (object metadata is validated
//!    elsewhere in kubesim); an embedded resource must carry a non-empty
//!    `apiVersion` and `kind`, as kube-apiserver requires.
//!
//! # Approximations
//!
//! * Malformed (non-structural) schemas are treated permissively and never
//!   cause a panic: a schema node that is not a JSON object (`true`, `false`,
//!   `null`, ...) accepts and preserves anything; an unknown or non-string
//!   `type` is ignored; keywords of the wrong JSON type are ignored; a
//!   `pattern` that fails to compile is skipped (the real server rejects such a
//!   CRD when it is created); `items` given as a list, or missing on an array,
//!   leaves the elements untouched; `additionalProperties: true` keeps any
//!   value under any key, and `additionalProperties: false` behaves as absent.
//!   `default: null` counts as no default.
//! * When a value has the wrong type only the type error is reported for it;
//!   the real server may add an `enum` error for the same value.
//! * For a failed `anyOf`/`oneOf`, the errors of the alternative with the
//!   fewest errors are reported (the real server ranks alternatives by how
//!   many checks passed). Composite errors (`allOf`, `anyOf`, `oneOf`, `not`)
//!   carry the field `<nil>`, as kube-apiserver reports them.
//! * `format`: integers with `int32`/`int64` are range-checked (the real server
//!   does not check ranges; this is stricter on purpose); every other format is
//!   accepted unchecked.
//! * `uniqueItems` compares JSON values exactly (`1` and `1.0` differ);
//!   `enum` compares numbers by value.
//! * Numbers in messages follow Go's `%v` formatting; objects and arrays are
//!   rendered as compact JSON (Go's encoder escapes `<`, `>` and `&`, this one
//!   does not). Error order is deterministic (keyword order; an object's fields
//!   in sorted key order, then its `required` list), whereas kube-apiserver's
//!   order varies.
//! * No CEL (`x-kubernetes-validations`), list-type (`x-kubernetes-list-type`)
//!   or ratcheting semantics.

use std::collections::HashMap;

use regex::Regex;
use serde_json::{Map, Number, Value};

const PRESERVE_UNKNOWN_FIELDS: &str = "x-kubernetes-preserve-unknown-fields";
const INT_OR_STRING: &str = "x-kubernetes-int-or-string";
const EMBEDDED_RESOURCE: &str = "x-kubernetes-embedded-resource";

/// Keys that the resource root and embedded resources keep out of the schema.
const TYPE_META_KEYS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Cause types, as in `metav1.CauseType`.
const REQUIRED: &str = "FieldValueRequired";
const INVALID: &str = "FieldValueInvalid";
const NOT_SUPPORTED: &str = "FieldValueNotSupported";
const TYPE_INVALID: &str = "FieldValueTypeInvalid";
const TOO_LONG: &str = "FieldValueTooLong";
const TOO_MANY: &str = "FieldValueTooMany";

/// One rejected field, as the API server reports it in a 422 Status's `details.causes`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// Dotted path with list indices, e.g. `spec.strategy.canary.steps[0].setWeight`.
    /// Errors that belong to no single field (failed `allOf`, `anyOf`, `oneOf`,
    /// `not`, or a wrong type of the whole object) carry `<nil>`, as
    /// kube-apiserver reports them.
    pub field: String,
    /// Kubernetes cause type: "FieldValueRequired", "FieldValueInvalid", "FieldValueNotSupported", "FieldValueTypeInvalid", "FieldValueTooLong", "FieldValueTooMany" ...
    pub reason: &'static str,
    /// The message as the API server words it, e.g. `Required value`, `Invalid value: "string": spec.replicas in body must be of type integer: "string"`, `Unsupported value: "x": supported values: "a", "b"`.
    pub message: String,
}

impl FieldError {
    /// `field: message`, as shown inside the Status message list.
    pub fn display(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

/// Prunes unknown fields from `obj` in place (unless preserved), applies schema `default`s, then validates.
///
/// `obj` is the whole custom resource (apiVersion, kind, metadata, spec, status ...). At the root,
/// `apiVersion`, `kind` and `metadata` are always kept and not validated by the schema (metadata is
/// validated elsewhere); same for embedded resources' `apiVersion`/`kind`/`metadata` under
/// `x-kubernetes-embedded-resource`.
///
/// Returns every error found (empty = accepted). Never panics, whatever the schema or object.
pub fn prune_default_validate(schema: &Value, obj: &mut Value) -> Vec<FieldError> {
    let root = Schema(schema);
    prune(obj, root, true, false);
    apply_defaults(obj, root);
    let mut errors = Vec::new();
    Validator::default().validate(root, obj, "", true, &mut errors);
    errors
}

/// [`prune_default_validate`] for one top-level field alone, when everything else in `obj` is known valid
/// (a status write: the rest is the stored object, checked when it was stored) and the field is set before
/// and after, so no rule on the root (`required`, property counts) can change. Gives what the whole walk
/// gives in that case, at the cost of the field: a Rollout's status write no longer walks its spec.
pub fn prune_default_validate_field(schema: &Value, obj: &mut Value, key: &str) -> Vec<FieldError> {
    let root = Schema(schema);
    let field = match root.field(key) {
        FieldSchema::Known(field) => field,
        FieldSchema::Any | FieldSchema::Unknown => return prune_default_validate(schema, obj),
    };
    let Some(value) = obj.get_mut(key).filter(|v| !v.is_null()) else {
        return prune_default_validate(schema, obj);
    };
    // The steps the root's walk takes for this key: pruned as a declared field, defaulted, validated.
    prune(value, field, false, false);
    apply_defaults(value, field);
    let mut errors = Vec::new();
    Validator::default().validate(field, value, key, field.embedded(), &mut errors);
    errors
}

// ---------------------------------------------------------------------------
// Reading a schema node
// ---------------------------------------------------------------------------

/// A view of one schema node; every accessor tolerates malformed input.
#[derive(Clone, Copy)]
struct Schema<'a>(&'a Value);

/// What the schema says about one key of an object.
enum FieldSchema<'a> {
    /// Declared by `properties` or an `additionalProperties` schema.
    Known(Schema<'a>),
    /// Allowed by `additionalProperties: true`, with no schema.
    Any,
    /// Not declared: pruned unless unknown fields are preserved.
    Unknown,
}

/// The `type` a value must have.
#[derive(Clone, Copy)]
enum Expected<'a> {
    One(&'a str),
    IntOrString,
}

impl<'a> Schema<'a> {
    fn get(self, key: &str) -> Option<&'a Value> {
        self.0.get(key)
    }

    /// A node that is not a JSON object accepts and preserves anything.
    fn is_permissive(self) -> bool {
        !self.0.is_object()
    }

    fn flag(self, key: &str) -> bool {
        matches!(self.get(key), Some(Value::Bool(true)))
    }

    fn nullable(self) -> bool {
        self.is_permissive() || self.flag("nullable")
    }

    fn preserves_unknown(self) -> bool {
        self.is_permissive() || self.flag(PRESERVE_UNKNOWN_FIELDS)
    }

    fn embedded(self) -> bool {
        self.flag(EMBEDDED_RESOURCE)
    }

    fn default_value(self) -> Option<&'a Value> {
        self.get("default").filter(|v| !v.is_null())
    }

    fn str(self, key: &str) -> Option<&'a str> {
        self.get(key).and_then(Value::as_str)
    }

    fn number(self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::as_f64)
    }

    /// A non-negative integer keyword such as `maxLength`.
    fn count(self, key: &str) -> Option<u64> {
        let value = self.get(key)?;
        value.as_u64().or_else(|| {
            value
                .as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0)
                .map(|f| f as u64)
        })
    }

    fn list(self, key: &str) -> &'a [Value] {
        self.get(key)
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    fn sub_schemas(self, key: &str) -> impl Iterator<Item = Schema<'a>> {
        self.list(key).iter().map(Schema)
    }

    fn required(self) -> impl Iterator<Item = &'a str> {
        self.list("required").iter().filter_map(Value::as_str)
    }

    fn expected_type(self) -> Option<Expected<'a>> {
        if self.flag(INT_OR_STRING) {
            return Some(Expected::IntOrString);
        }
        match self.str("type")? {
            t @ ("object" | "array" | "string" | "integer" | "number" | "boolean") => {
                Some(Expected::One(t))
            }
            _ => None,
        }
    }

    fn properties(self) -> impl Iterator<Item = (&'a String, Schema<'a>)> {
        self.get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|props| props.iter().map(|(k, v)| (k, Schema(v))))
    }

    fn field(self, key: &str) -> FieldSchema<'a> {
        if let Some(prop) = self.get("properties").and_then(|props| props.get(key)) {
            return FieldSchema::Known(Schema(prop));
        }
        match self.get("additionalProperties") {
            Some(Value::Bool(true)) => FieldSchema::Any,
            Some(additional @ Value::Object(_)) => FieldSchema::Known(Schema(additional)),
            _ => FieldSchema::Unknown,
        }
    }

    fn items(self) -> Option<Schema<'a>> {
        self.get("items").filter(|v| v.is_object()).map(Schema)
    }
}

impl Expected<'_> {
    fn matches(self, value: &Value) -> bool {
        match self {
            Expected::IntOrString => value.is_string() || is_integer(value),
            Expected::One("object") => value.is_object(),
            Expected::One("array") => value.is_array(),
            Expected::One("string") => value.is_string(),
            Expected::One("boolean") => value.is_boolean(),
            Expected::One("integer") => is_integer(value),
            Expected::One("number") => value.is_number(),
            Expected::One(_) => true,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Expected::IntOrString => "integer,string",
            Expected::One("object") => "object",
            Expected::One("array") => "array",
            Expected::One("string") => "string",
            Expected::One("boolean") => "boolean",
            Expected::One("integer") => "integer",
            Expected::One(_) => "number",
        }
    }
}

/// A JSON number with no fractional part.
fn is_integer(value: &Value) -> bool {
    match value {
        Value::Number(n) => {
            n.is_i64()
                || n.is_u64()
                || n.as_f64()
                    .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
        }
        _ => false,
    }
}

/// The OpenAPI type name of a value, as kube-openapi reports it.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_non_nullable_null(value: &Value, schema: Schema) -> bool {
    value.is_null() && !schema.nullable()
}

/// Whether the resource root or an embedded resource keeps this field regardless of the schema.
fn is_kept_type_meta(key: &str, value: &Value) -> bool {
    match key {
        "apiVersion" | "kind" => value.is_string(),
        "metadata" => value.is_object(),
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// Pruning
// ---------------------------------------------------------------------------

/// Removes undeclared fields below `value`. `resource_like` marks the resource
/// root; `inherited_preserve` carries `x-kubernetes-preserve-unknown-fields`
/// from an array to its items.
fn prune(value: &mut Value, schema: Schema, resource_like: bool, inherited_preserve: bool) {
    match value {
        Value::Object(map) => {
            let keeps_type_meta = resource_like || schema.embedded();
            prune_object(map, schema, keeps_type_meta, inherited_preserve);
        }
        Value::Array(items) => prune_array(items, schema, inherited_preserve),
        _ => {}
    }
}

fn prune_object(
    map: &mut Map<String, Value>,
    schema: Schema,
    keeps_type_meta: bool,
    inherited_preserve: bool,
) {
    let preserve = inherited_preserve || schema.preserves_unknown();
    map.retain(|key, child| {
        if keeps_type_meta && is_kept_type_meta(key, child) {
            return true;
        }
        match schema.field(key) {
            FieldSchema::Known(field_schema) => keep_declared(child, field_schema),
            FieldSchema::Any => true,
            FieldSchema::Unknown => preserve,
        }
    });
}

/// Prunes a declared field's value; returns false when the field must be dropped
/// (a non-nullable `null` with no default to replace it).
fn keep_declared(value: &mut Value, schema: Schema) -> bool {
    if is_non_nullable_null(value, schema) {
        return schema.default_value().is_some();
    }
    prune(value, schema, false, false);
    true
}

fn prune_array(items: &mut [Value], schema: Schema, inherited_preserve: bool) {
    let Some(item_schema) = schema.items() else {
        return;
    };
    let preserve = inherited_preserve || schema.preserves_unknown();
    for item in items {
        prune(item, item_schema, false, preserve);
    }
}

// ---------------------------------------------------------------------------
// Defaulting
// ---------------------------------------------------------------------------

fn apply_defaults(value: &mut Value, schema: Schema) {
    match value {
        Value::Object(map) => default_object(map, schema),
        Value::Array(items) => default_array(items, schema),
        _ => {}
    }
}

fn default_object(map: &mut Map<String, Value>, schema: Schema) {
    for (key, prop) in schema.properties() {
        let Some(default) = prop.default_value() else {
            continue;
        };
        let missing = map
            .get(key)
            .is_none_or(|current| is_non_nullable_null(current, prop));
        if missing {
            map.insert(key.clone(), pruned_default(default, prop));
        }
    }
    for (key, child) in map.iter_mut() {
        if let FieldSchema::Known(field_schema) = schema.field(key) {
            replace_null_with_default(child, field_schema);
            apply_defaults(child, field_schema);
        }
    }
}

fn default_array(items: &mut [Value], schema: Schema) {
    let Some(item_schema) = schema.items() else {
        return;
    };
    for item in items {
        replace_null_with_default(item, item_schema);
        apply_defaults(item, item_schema);
    }
}

fn replace_null_with_default(value: &mut Value, schema: Schema) {
    if is_non_nullable_null(value, schema)
        && let Some(default) = schema.default_value()
    {
        *value = pruned_default(default, schema);
    }
}

/// A copy of a `default`, pruned like the value it stands for.
fn pruned_default(default: &Value, schema: Schema) -> Value {
    let mut value = default.clone();
    prune(&mut value, schema, false, false);
    value
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

/// Walks a value against its schema, collecting errors; caches compiled patterns.
#[derive(Default)]
struct Validator {
    patterns: HashMap<String, Option<Regex>>,
}

impl Validator {
    /// Validates `value` at `path`. `type_meta` marks the resource root or an
    /// embedded resource, whose `apiVersion`/`kind`/`metadata` are skipped.
    fn validate(
        &mut self,
        schema: Schema,
        value: &Value,
        path: &str,
        type_meta: bool,
        errs: &mut Vec<FieldError>,
    ) {
        if schema.is_permissive() {
            return;
        }
        if value.is_null() {
            validate_null(schema, path, errs);
            return;
        }
        if let Some(expected) = schema.expected_type()
            && !expected.matches(value)
        {
            errs.push(type_invalid(path, expected.describe(), json_type(value)));
            return;
        }
        self.validate_composition(schema, value, path, type_meta, errs);
        match value {
            Value::String(s) => self.validate_string(schema, s, value, path, errs),
            Value::Number(n) => validate_number(schema, n, value, path, errs),
            Value::Array(items) => self.validate_array(schema, items, path, errs),
            _ => {}
        }
        validate_enum(schema, value, path, errs);
        if let Value::Object(map) = value {
            self.validate_object(schema, map, path, type_meta, errs);
        }
    }

    /// Errors of `value` against one sub-schema, kept apart from the rest.
    fn errors_against(
        &mut self,
        schema: Schema,
        value: &Value,
        path: &str,
        type_meta: bool,
    ) -> Vec<FieldError> {
        let mut errs = Vec::new();
        self.validate(schema, value, path, type_meta, &mut errs);
        errs
    }

    fn validate_composition(
        &mut self,
        schema: Schema,
        value: &Value,
        path: &str,
        type_meta: bool,
        errs: &mut Vec<FieldError>,
    ) {
        self.validate_any_of(schema, value, path, type_meta, errs);
        self.validate_one_of(schema, value, path, type_meta, errs);
        self.validate_all_of(schema, value, path, type_meta, errs);
        if let Some(not) = schema.get("not").filter(|n| n.is_object())
            && self
                .errors_against(Schema(not), value, path, type_meta)
                .is_empty()
        {
            errs.push(composite(format!(
                "{} must not validate the schema (not)",
                go_quote(path)
            )));
        }
    }

    fn validate_any_of(
        &mut self,
        schema: Schema,
        value: &Value,
        path: &str,
        type_meta: bool,
        errs: &mut Vec<FieldError>,
    ) {
        let mut best: Option<Vec<FieldError>> = None;
        for alternative in schema.sub_schemas("anyOf") {
            let alt_errs = self.errors_against(alternative, value, path, type_meta);
            if alt_errs.is_empty() {
                return;
            }
            keep_fewest(&mut best, alt_errs);
        }
        if let Some(best) = best {
            errs.push(composite(format!(
                "{} must validate at least one schema (anyOf)",
                go_quote(path)
            )));
            errs.extend(best);
        }
    }

    fn validate_one_of(
        &mut self,
        schema: Schema,
        value: &Value,
        path: &str,
        type_meta: bool,
        errs: &mut Vec<FieldError>,
    ) {
        let mut best: Option<Vec<FieldError>> = None;
        let mut valid = 0usize;
        let mut alternatives = 0usize;
        for alternative in schema.sub_schemas("oneOf") {
            alternatives += 1;
            let alt_errs = self.errors_against(alternative, value, path, type_meta);
            if alt_errs.is_empty() {
                valid += 1;
            } else {
                keep_fewest(&mut best, alt_errs);
            }
        }
        if alternatives == 0 || valid == 1 {
            return;
        }
        let found = if valid == 0 {
            "Found none valid".to_owned()
        } else {
            format!("Found {valid} valid alternatives")
        };
        errs.push(composite(format!(
            "{} must validate one and only one schema (oneOf). {found}",
            go_quote(path)
        )));
        if valid == 0 {
            errs.extend(best.unwrap_or_default());
        }
    }

    fn validate_all_of(
        &mut self,
        schema: Schema,
        value: &Value,
        path: &str,
        type_meta: bool,
        errs: &mut Vec<FieldError>,
    ) {
        let mut valid = 0usize;
        let mut alternatives = 0usize;
        for part in schema.sub_schemas("allOf") {
            alternatives += 1;
            let part_errs = self.errors_against(part, value, path, type_meta);
            if part_errs.is_empty() {
                valid += 1;
            }
            errs.extend(part_errs);
        }
        if valid < alternatives {
            let none = if valid == 0 { ". None validated" } else { "" };
            errs.push(composite(format!(
                "{} must validate all the schemas (allOf){none}",
                go_quote(path)
            )));
        }
    }

    fn validate_string(
        &mut self,
        schema: Schema,
        s: &str,
        value: &Value,
        path: &str,
        errs: &mut Vec<FieldError>,
    ) {
        let length = s.chars().count() as u64;
        if let Some(min) = schema.count("minLength")
            && length < min
        {
            let detail = format!("{path} in body should be at least {min} chars long");
            errs.push(invalid(path, value, detail));
        }
        if let Some(max) = schema.count("maxLength")
            && length > max
        {
            errs.push(too_long(path, max));
        }
        if let Some(pattern) = schema.str("pattern")
            && self.regex(pattern).is_some_and(|re| !re.is_match(s))
        {
            let detail = format!("{path} in body should match '{pattern}'");
            errs.push(invalid(path, value, detail));
        }
    }

    /// The compiled `pattern`, or None when it does not compile (then unchecked).
    fn regex(&mut self, pattern: &str) -> Option<&Regex> {
        self.patterns
            .entry(pattern.to_owned())
            .or_insert_with(|| Regex::new(pattern).ok())
            .as_ref()
    }

    fn validate_array(
        &mut self,
        schema: Schema,
        items: &[Value],
        path: &str,
        errs: &mut Vec<FieldError>,
    ) {
        if let Some(item_schema) = schema.items() {
            for (i, item) in items.iter().enumerate() {
                let item_path = index_path(path, i);
                self.validate(item_schema, item, &item_path, item_schema.embedded(), errs);
            }
        }
        let len = items.len() as u64;
        if let Some(min) = schema.count("minItems")
            && len < min
        {
            let detail = format!("{path} in body should have at least {min} items");
            errs.push(invalid(path, &Value::from(len), detail));
        }
        if let Some(max) = schema.count("maxItems")
            && len > max
        {
            errs.push(too_many(path, len, max));
        }
        if schema.flag("uniqueItems") && has_duplicates(items) {
            let detail = format!("{path} in body shouldn't contain duplicates");
            errs.push(invalid(path, &Value::from(""), detail));
        }
    }

    fn validate_object(
        &mut self,
        schema: Schema,
        map: &Map<String, Value>,
        path: &str,
        type_meta: bool,
        errs: &mut Vec<FieldError>,
    ) {
        if !property_count_ok(schema, map, path, errs) {
            return;
        }
        // Sorted, so that the error order does not hang on serde_json's `preserve_order`.
        let mut fields: Vec<(&String, &Value)> = map.iter().collect();
        fields.sort_by(|a, b| a.0.cmp(b.0));
        for (key, child) in fields {
            if type_meta && TYPE_META_KEYS.contains(&key.as_str()) {
                continue;
            }
            if let FieldSchema::Known(field_schema) = schema.field(key) {
                let child_path = child_path(path, key);
                self.validate(
                    field_schema,
                    child,
                    &child_path,
                    field_schema.embedded(),
                    errs,
                );
            }
        }
        for key in schema.required() {
            if !map.contains_key(key) {
                errs.push(required(&child_path(path, key), ""));
            }
        }
        if schema.embedded() {
            validate_embedded_type_meta(map, path, errs);
        }
    }
}

/// Keeps whichever error list is shorter (the first one on a tie).
fn keep_fewest(best: &mut Option<Vec<FieldError>>, candidate: Vec<FieldError>) {
    if best.as_ref().is_none_or(|b| candidate.len() < b.len()) {
        *best = Some(candidate);
    }
}

/// A `null` that survived pruning and defaulting: allowed only if nullable or untyped.
fn validate_null(schema: Schema, path: &str, errs: &mut Vec<FieldError>) {
    if !schema.nullable()
        && let Some(expected) = schema.expected_type()
    {
        errs.push(type_invalid(path, expected.describe(), "null"));
        return;
    }
    validate_enum(schema, &Value::Null, path, errs);
}

fn validate_number(
    schema: Schema,
    n: &Number,
    value: &Value,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    if let Some(err) = integer_format_error(schema, n, value, path) {
        errs.push(err);
    }
    let Some(x) = n.as_f64() else {
        return;
    };
    let integral = n.is_i64() || n.is_u64();
    if let Some(factor) = schema.number("multipleOf")
        && factor > 0.0
        && !is_multiple(x, factor)
    {
        let detail = format!(
            "{path} in body should be a multiple of {}",
            format_bound(factor, integral)
        );
        errs.push(invalid(path, value, detail));
    }
    check_upper_bounds(schema, x, integral, value, path, errs);
    check_lower_bounds(schema, x, integral, value, path, errs);
}

/// `format: int32`/`int64` range check for integer values.
fn integer_format_error(
    schema: Schema,
    n: &Number,
    value: &Value,
    path: &str,
) -> Option<FieldError> {
    let format = schema.str("format")?;
    let (low, high) = match format {
        "int32" => (f64::from(i32::MIN), f64::from(i32::MAX)),
        "int64" => (i64::MIN as f64, i64::MAX as f64),
        _ => return None,
    };
    if !is_integer(value) {
        return None;
    }
    let in_range = match (n.as_i64(), n.as_u64()) {
        (Some(i), _) => format != "int32" || i32::try_from(i).is_ok(),
        (None, Some(_)) => false,
        (None, None) => n.as_f64().is_some_and(|f| f >= low && f <= high),
    };
    if in_range {
        return None;
    }
    let rendered = render_number(n);
    let message = format!(
        "Invalid value: {rendered}: {path} in body must be of type {format}: {}",
        go_quote(&rendered)
    );
    Some(FieldError {
        field: field_name(path),
        reason: TYPE_INVALID,
        message,
    })
}

fn is_multiple(x: f64, factor: f64) -> bool {
    let quotient = x / factor;
    quotient.is_finite() && (quotient - quotient.round()).abs() < 1e-9
}

fn check_upper_bounds(
    schema: Schema,
    x: f64,
    integral: bool,
    value: &Value,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    let exclusive = schema.flag("exclusiveMaximum");
    if let Some(max) = schema.number("maximum")
        && (x > max || (exclusive && x == max))
    {
        let relation = if exclusive {
            "less than"
        } else {
            "less than or equal to"
        };
        errs.push(bound_error(path, value, relation, max, integral));
    }
    // JSON Schema draft 6+ spelling: `exclusiveMaximum` holding the bound itself.
    if let Some(max) = schema.number("exclusiveMaximum")
        && x >= max
    {
        errs.push(bound_error(path, value, "less than", max, integral));
    }
}

fn check_lower_bounds(
    schema: Schema,
    x: f64,
    integral: bool,
    value: &Value,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    let exclusive = schema.flag("exclusiveMinimum");
    if let Some(min) = schema.number("minimum")
        && (x < min || (exclusive && x == min))
    {
        let relation = if exclusive {
            "greater than"
        } else {
            "greater than or equal to"
        };
        errs.push(bound_error(path, value, relation, min, integral));
    }
    if let Some(min) = schema.number("exclusiveMinimum")
        && x <= min
    {
        errs.push(bound_error(path, value, "greater than", min, integral));
    }
}

fn bound_error(
    path: &str,
    value: &Value,
    relation: &str,
    bound: f64,
    integral: bool,
) -> FieldError {
    let detail = format!(
        "{path} in body should be {relation} {}",
        format_bound(bound, integral)
    );
    invalid(path, value, detail)
}

fn validate_enum(schema: Schema, value: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(allowed) = schema.get("enum").and_then(Value::as_array) else {
        return;
    };
    if allowed.is_empty() || allowed.iter().any(|candidate| enum_equal(candidate, value)) {
        return;
    }
    errs.push(not_supported(path, value, allowed));
}

/// Equality for `enum`: numbers compare by value, everything else exactly.
fn enum_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        _ => a == b,
    }
}

fn has_duplicates(items: &[Value]) -> bool {
    items
        .iter()
        .enumerate()
        .any(|(i, item)| items[i + 1..].contains(item))
}

/// `minProperties`/`maxProperties`; on failure the object's fields are not checked further.
fn property_count_ok(
    schema: Schema,
    map: &Map<String, Value>,
    path: &str,
    errs: &mut Vec<FieldError>,
) -> bool {
    let count = map.len() as u64;
    if let Some(min) = schema.count("minProperties")
        && count < min
    {
        let detail = format!("{path} in body should have at least {min} properties");
        errs.push(invalid(path, &Value::from(count), detail));
        return false;
    }
    if let Some(max) = schema.count("maxProperties")
        && count > max
    {
        errs.push(too_many(path, count, max));
        return false;
    }
    true
}

/// kube-apiserver requires an embedded resource to name its `apiVersion` and `kind`.
fn validate_embedded_type_meta(map: &Map<String, Value>, path: &str, errs: &mut Vec<FieldError>) {
    for key in ["apiVersion", "kind"] {
        let field_path = child_path(path, key);
        match map.get(key) {
            None => errs.push(required(&field_path, "must not be empty")),
            Some(Value::String(s)) if s.is_empty() => {
                errs.push(invalid(
                    &field_path,
                    &Value::from(""),
                    "must not be empty".into(),
                ));
            }
            Some(value @ Value::String(s)) if key == "apiVersion" && s.matches('/').count() > 1 => {
                let detail = format!("unexpected GroupVersion string: {s}");
                errs.push(invalid(&field_path, value, detail));
            }
            Some(Value::String(_)) => {}
            Some(other) => errs.push(invalid(&field_path, other, "must be a string".into())),
        }
    }
}

// ---------------------------------------------------------------------------
// Paths and error wording
// ---------------------------------------------------------------------------

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn index_path(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// The `field` of a cause: kube-apiserver prints an empty path as `<nil>`.
fn field_name(path: &str) -> String {
    if path.is_empty() {
        "<nil>".to_owned()
    } else {
        path.to_owned()
    }
}

fn required(path: &str, detail: &str) -> FieldError {
    let message = if detail.is_empty() {
        "Required value".to_owned()
    } else {
        format!("Required value: {detail}")
    };
    FieldError {
        field: field_name(path),
        reason: REQUIRED,
        message,
    }
}

fn invalid(path: &str, value: &Value, detail: String) -> FieldError {
    FieldError {
        field: field_name(path),
        reason: INVALID,
        message: format!("Invalid value: {}: {detail}", render_value(value)),
    }
}

fn type_invalid(path: &str, expected: &str, actual: &str) -> FieldError {
    let quoted = go_quote(actual);
    FieldError {
        field: field_name(path),
        reason: TYPE_INVALID,
        message: format!(
            "Invalid value: {quoted}: {path} in body must be of type {expected}: {quoted}"
        ),
    }
}

fn not_supported(path: &str, value: &Value, allowed: &[Value]) -> FieldError {
    let supported: Vec<String> = allowed
        .iter()
        .map(|v| match v {
            Value::String(s) => go_quote(s),
            other => go_quote(&other.to_string()),
        })
        .collect();
    FieldError {
        field: field_name(path),
        reason: NOT_SUPPORTED,
        message: format!(
            "Unsupported value: {}: supported values: {}",
            render_value(value),
            supported.join(", ")
        ),
    }
}

fn too_long(path: &str, max: u64) -> FieldError {
    let unit = if max == 1 { "byte" } else { "bytes" };
    FieldError {
        field: field_name(path),
        reason: TOO_LONG,
        message: format!("Too long: may not be more than {max} {unit}"),
    }
}

fn too_many(path: &str, actual: u64, max: u64) -> FieldError {
    let unit = if max == 1 { "item" } else { "items" };
    FieldError {
        field: field_name(path),
        reason: TOO_MANY,
        message: format!("Too many: {actual}: must have at most {max} {unit}"),
    }
}

/// An error of a whole composition (`allOf`, `anyOf`, ...): no field, empty bad value.
fn composite(detail: String) -> FieldError {
    FieldError {
        field: field_name(""),
        reason: INVALID,
        message: format!("Invalid value: \"\": {detail}"),
    }
}

/// A bad value as Go's field errors print it: strings quoted, numbers and
/// booleans bare, anything else as JSON.
fn render_value(value: &Value) -> String {
    match value {
        Value::String(s) => go_quote(s),
        Value::Number(n) => render_number(n),
        other => other.to_string(),
    }
}

fn render_number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        n.as_f64().map_or_else(|| n.to_string(), go_float)
    }
}

/// A schema bound: as an integer next to integer data (Go's native-type
/// messages), else in Go's `%v` float style.
fn format_bound(bound: f64, integral: bool) -> String {
    if integral && bound.fract() == 0.0 && bound.abs() < 9.0e15 {
        format!("{bound:.0}")
    } else {
        go_float(bound)
    }
}

/// Go's `%v` for a float64: shortest digits, exponent form below 1e-4 or from 1e6.
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    let scientific = format!("{f:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..6).contains(&exponent) {
        return format!("{f}");
    }
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
}

/// Go's `%q` / `strconv.Quote` for a string.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Runs the pipeline; returns the resulting object and the errors as displayed.
    fn run(schema: Value, mut obj: Value) -> (Value, Vec<String>) {
        let errs = prune_default_validate(&schema, &mut obj);
        (obj, errs.iter().map(FieldError::display).collect())
    }

    fn errors(schema: Value, obj: Value) -> Vec<FieldError> {
        let mut obj = obj;
        prune_default_validate(&schema, &mut obj)
    }

    #[test]
    fn a_status_walked_alone_ends_as_the_whole_walk_leaves_it() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"replicas": {"type": "integer", "default": 1}}},
            "status": {"type": "object", "properties": {
                "phase": {"type": "string", "enum": ["Healthy", "Degraded"]},
                "count": {"type": "integer", "default": 0},
                "conditions": {"type": "array", "items": {
                    "type": "object", "properties": {"type": {"type": "string"}}}},
            }},
        }});
        let statuses = [
            json!({"phase": "Healthy", "unknown": 1}),
            json!({"phase": "Bogus"}),
            json!({"conditions": [{"type": "Ready", "extra": true}], "count": "x"}),
            json!({"count": null}),
        ];
        for status in statuses {
            let stored = json!({
                "apiVersion": "example.com/v1", "kind": "Thing",
                "metadata": {"name": "a", "namespace": "default"},
                "spec": {"replicas": 2},
                "status": status,
            });
            let (mut whole, mut alone) = (stored.clone(), stored.clone());
            let whole_errors = prune_default_validate(&schema, &mut whole);
            let alone_errors = prune_default_validate_field(&schema, &mut alone, "status");
            assert_eq!(alone, whole, "{status}");
            let shown =
                |errors: &[FieldError]| errors.iter().map(FieldError::display).collect::<Vec<_>>();
            assert_eq!(shown(&alone_errors), shown(&whole_errors), "{status}");
        }
    }

    #[test]
    fn a_missing_status_is_walked_with_the_whole_object() {
        let schema = with_spec(
            json!({"type": "object", "properties": {"replicas": {"type": "integer", "default": 1}}}),
        );
        let mut obj = resource(json!({}));
        assert!(prune_default_validate_field(&schema, &mut obj, "status").is_empty());
        assert_eq!(obj["spec"]["replicas"], 1, "the spec was defaulted");
    }

    /// A root schema with the given `spec` schema.
    fn with_spec(spec: Value) -> Value {
        json!({"type": "object", "properties": {"spec": spec}})
    }

    fn resource(spec: Value) -> Value {
        json!({
            "apiVersion": "example.com/v1",
            "kind": "Thing",
            "metadata": {"name": "a", "namespace": "default", "labels": {"x": "y"}},
            "spec": spec
        })
    }

    fn rollout_schema() -> Value {
        with_spec(json!({
            "type": "object",
            "required": ["replicas"],
            "properties": {
                "replicas": {"type": "integer", "minimum": 0, "maximum": 10},
                "strategy": {
                    "type": "object",
                    "properties": {
                        "canary": {
                            "type": "object",
                            "properties": {
                                "steps": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "setWeight": {"type": "integer", "format": "int32"},
                                            "pause": {
                                                "type": "object",
                                                "properties": {
                                                    "duration": {"x-kubernetes-int-or-string": true}
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }))
    }

    // --- pruning ---------------------------------------------------------

    #[test]
    fn prunes_unknown_fields_at_several_depths() {
        let obj = json!({
            "apiVersion": "example.com/v1",
            "kind": "Rollout",
            "metadata": {"name": "r", "annotations": {"a": "b"}},
            "rootJunk": 1,
            "spec": {
                "replicas": 2,
                "specJunk": true,
                "strategy": {
                    "strategyJunk": "x",
                    "canary": {
                        "steps": [
                            {"setWeight": 20, "stepJunk": 1},
                            {"pause": {"duration": "1m", "pauseJunk": {}}}
                        ]
                    }
                }
            }
        });
        let (pruned, errs) = run(rollout_schema(), obj);
        assert_eq!(errs, Vec::<String>::new());
        assert_eq!(
            pruned,
            json!({
                "apiVersion": "example.com/v1",
                "kind": "Rollout",
                "metadata": {"name": "r", "annotations": {"a": "b"}},
                "spec": {
                    "replicas": 2,
                    "strategy": {
                        "canary": {
                            "steps": [
                                {"setWeight": 20},
                                {"pause": {"duration": "1m"}}
                            ]
                        }
                    }
                }
            })
        );
    }

    #[test]
    fn object_without_properties_is_emptied() {
        let schema = with_spec(json!({"type": "object"}));
        let (obj, errs) = run(schema, resource(json!({"a": 1, "b": {"c": 2}})));
        assert!(errs.is_empty());
        assert_eq!(obj["spec"], json!({}));
    }

    #[test]
    fn root_type_meta_kept_without_properties_and_not_validated() {
        let schema = json!({
            "type": "object",
            "properties": {"metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 1}}}}
        });
        let obj = resource(json!({}));
        let (out, errs) = run(schema, obj.clone());
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(out["apiVersion"], obj["apiVersion"]);
        assert_eq!(out["kind"], obj["kind"]);
        assert_eq!(out["metadata"], obj["metadata"]);
        assert!(out.get("spec").is_none());
    }

    #[test]
    fn root_type_meta_of_wrong_type_is_pruned() {
        let schema = json!({"type": "object"});
        let (out, errs) = run(
            schema,
            json!({"apiVersion": 5, "kind": "K", "metadata": "m"}),
        );
        assert!(errs.is_empty());
        assert_eq!(out, json!({"kind": "K"}));
    }

    #[test]
    fn preserve_unknown_fields_at_root() {
        let schema = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
        let obj = resource(json!({"anything": {"goes": [1, 2, {"deep": null}]}}));
        let (out, errs) = run(schema, obj.clone());
        assert!(errs.is_empty());
        assert_eq!(out, obj);
    }

    #[test]
    fn preserve_unknown_fields_nested_and_combined_with_properties() {
        let schema = with_spec(json!({
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
            "properties": {
                "known": {"type": "object", "properties": {"a": {"type": "integer"}}},
                "count": {"type": "integer"}
            }
        }));
        let obj = resource(json!({
            "free": {"x": [1, {"y": 2}]},
            "known": {"a": 1, "dropped": 2},
            "count": 3
        }));
        let (out, errs) = run(schema, obj);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(
            out["spec"],
            json!({"free": {"x": [1, {"y": 2}]}, "known": {"a": 1}, "count": 3})
        );
    }

    #[test]
    fn preserved_fields_are_validated_when_declared() {
        let schema = with_spec(json!({
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
            "properties": {"count": {"type": "integer"}}
        }));
        let (_, errs) = run(schema, resource(json!({"count": "three", "free": "ok"})));
        assert_eq!(
            errs,
            vec![
                r#"spec.count: Invalid value: "string": spec.count in body must be of type integer: "string""#
            ]
        );
    }

    #[test]
    fn preserve_on_array_reaches_its_items() {
        let schema = with_spec(json!({
            "type": "object",
            "properties": {
                "list": {
                    "type": "array",
                    "x-kubernetes-preserve-unknown-fields": true,
                    "items": {"type": "object", "properties": {"a": {"type": "object", "properties": {}}}}
                }
            }
        }));
        let (out, errs) = run(schema, resource(json!({"list": [{"a": {"x": 1}, "b": 2}]})));
        assert!(errs.is_empty());
        assert_eq!(out["spec"]["list"], json!([{"a": {}, "b": 2}]));
    }

    #[test]
    fn additional_properties_schema_prunes_and_validates_values() {
        let schema = with_spec(json!({
            "type": "object",
            "properties": {
                "selectors": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "properties": {"weight": {"type": "integer"}}
                    }
                }
            }
        }));
        let obj =
            resource(json!({"selectors": {"a": {"weight": 1, "junk": 1}, "b": {"weight": "x"}}}));
        let (out, errs) = run(schema, obj);
        assert_eq!(out["spec"]["selectors"]["a"], json!({"weight": 1}));
        assert_eq!(
            errs,
            vec![
                r#"spec.selectors.b.weight: Invalid value: "string": spec.selectors.b.weight in body must be of type integer: "string""#
            ]
        );
    }

    #[test]
    fn additional_properties_true_keeps_everything() {
        let schema = with_spec(json!({"type": "object", "additionalProperties": true}));
        let (out, errs) = run(schema, resource(json!({"a": {"b": [1]}})));
        assert!(errs.is_empty());
        assert_eq!(out["spec"], json!({"a": {"b": [1]}}));
    }

    // --- types -----------------------------------------------------------

    #[test]
    fn wrong_type_has_exact_message_shape() {
        let errs = errors(rollout_schema(), resource(json!({"replicas": "string"})));
        assert_eq!(
            errs,
            vec![FieldError {
                field: "spec.replicas".into(),
                reason: "FieldValueTypeInvalid",
                message: r#"Invalid value: "string": spec.replicas in body must be of type integer: "string""#.into(),
            }]
        );
    }

    #[test]
    fn every_type_is_checked() {
        let schema = with_spec(json!({
            "type": "object",
            "properties": {
                "o": {"type": "object"},
                "a": {"type": "array"},
                "s": {"type": "string"},
                "b": {"type": "boolean"},
                "n": {"type": "number"}
            }
        }));
        let (_, errs) = run(
            schema,
            resource(json!({"o": [], "a": {}, "s": 1, "b": "true", "n": "1"})),
        );
        assert_eq!(
            errs,
            vec![
                r#"spec.a: Invalid value: "object": spec.a in body must be of type array: "object""#,
                r#"spec.b: Invalid value: "string": spec.b in body must be of type boolean: "string""#,
                r#"spec.n: Invalid value: "string": spec.n in body must be of type number: "string""#,
                r#"spec.o: Invalid value: "array": spec.o in body must be of type object: "array""#,
                r#"spec.s: Invalid value: "integer": spec.s in body must be of type string: "integer""#,
            ]
        );
    }

    #[test]
    fn integer_accepts_whole_numbers_only_and_number_accepts_integers() {
        let schema = with_spec(json!({
            "type": "object",
            "properties": {"i": {"type": "integer"}, "n": {"type": "number"}}
        }));
        assert!(errors(schema.clone(), resource(json!({"i": 3.0, "n": 3}))).is_empty());
        let (_, errs) = run(schema, resource(json!({"i": 3.5, "n": 0.5})));
        assert_eq!(
            errs,
            vec![
                r#"spec.i: Invalid value: "number": spec.i in body must be of type integer: "number""#
            ]
        );
    }

    #[test]
    fn root_type_error_has_nil_field() {
        let errs = errors(json!({"type": "object"}), json!([1]));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "<nil>");
        assert_eq!(errs[0].reason, "FieldValueTypeInvalid");
    }

    // --- nullable --------------------------------------------------------

    #[test]
    fn nulls_follow_the_defaulting_and_nullable_rules() {
        // The example of the Kubernetes docs, section "Defaulting and Nullable".
        let schema = with_spec(json!({
            "type": "object",
            "properties": {
                "foo": {"type": "string", "nullable": false, "default": "default"},
                "bar": {"type": "string", "nullable": true},
                "baz": {"type": "string"}
            }
        }));
        let (out, errs) = run(
            schema,
            resource(json!({"foo": null, "bar": null, "baz": null})),
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(out["spec"], json!({"foo": "default", "bar": null}));
    }

    #[test]
    fn dropped_null_of_required_field_is_required() {
        let schema = with_spec(json!({
            "type": "object",
            "required": ["image"],
            "properties": {"image": {"type": "string"}}
        }));
        let (_, errs) = run(schema, resource(json!({"image": null})));
        assert_eq!(errs, vec!["spec.image: Required value"]);
    }

    #[test]
    fn null_list_items_are_defaulted_or_rejected() {
        let schema = with_spec(json!({
            "type": "object",
            "properties": {
                "withDefault": {"type": "array", "items": {"type": "string", "default": "d"}},
                "without": {"type": "array", "items": {"type": "string"}},
                "nullable": {"type": "array", "items": {"type": "string", "nullable": true}}
            }
        }));
        let obj = resource(json!({
            "withDefault": ["a", null],
            "without": ["a", null],
            "nullable": [null]
        }));
        let (out, errs) = run(schema, obj);
        assert_eq!(out["spec"]["withDefault"], json!(["a", "d"]));
        assert_eq!(out["spec"]["nullable"], json!([null]));
        assert_eq!(
            errs,
            vec![
                r#"spec.without[1]: Invalid value: "null": spec.without[1] in body must be of type string: "null""#
            ]
        );
    }

    #[test]
    fn untyped_preserved_field_drops_null() {
        let schema = with_spec(json!({
            "type": "object",
            "properties": {"raw": {"x-kubernetes-preserve-unknown-fields": true}}
        }));
        let (out, errs) = run(schema, resource(json!({"raw": null, "other": null})));
        assert!(errs.is_empty());
        assert_eq!(out["spec"], json!({}));
    }

    // --- required, enum, bounds -------------------------------------------

    #[test]
    fn required_missing_is_reported_per_field() {
        let schema = json!({
            "type": "object",
            "required": ["spec"],
            "properties": {"spec": {"type": "object", "required": ["a", "b"], "properties": {"a": {}, "b": {}}}}
        });
        let errs = errors(schema.clone(), json!({"apiVersion": "v1", "kind": "K"}));
        assert_eq!(
            errs,
            vec![FieldError {
                field: "spec".into(),
                reason: "FieldValueRequired",
                message: "Required value".into()
            }]
        );
        let (_, errs) = run(schema, resource(json!({"a": 1})));
        assert_eq!(errs, vec!["spec.b: Required value"]);
    }

    #[test]
    fn enum_rejects_unsupported_values() {
        let schema = with_spec(json!({
            "type": "object",
            "properties": {
                "mode": {"type": "string", "enum": ["a", "b"]},
                "level": {"type": "integer", "enum": [1, 2]}
            }
        }));
        assert!(errors(schema.clone(), resource(json!({"mode": "b", "level": 2.0}))).is_empty());
        let errs = errors(schema, resource(json!({"mode": "x", "level": 3})));
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].reason, "FieldValueNotSupported");
        assert_eq!(
            errs[0].display(),
            r#"spec.level: Unsupported value: 3: supported values: "1", "2""#
        );
        assert_eq!(
            errs[1].display(),
            r#"spec.mode: Unsupported value: "x": supported values: "a", "b""#
        );
    }

    #[test]
    fn numeric_bounds() {
        let schema = with_spec(json!({
            "type": "object",
            "properties": {
                "max": {"type": "integer", "maximum": 10},
                "min": {"type": "integer", "minimum": 1},
                "xmax": {"type": "number", "maximum": 1.5, "exclusiveMaximum": true},
                "xmin": {"type": "integer", "minimum": 0, "exclusiveMinimum": true},
                "mult": {"type": "integer", "multipleOf": 5}
            }
        }));
        let ok = resource(json!({"max": 10, "min": 1, "xmax": 1.4, "xmin": 1, "mult": 15}));
        assert!(errors(schema.clone(), ok).is_empty());
        let bad = resource(json!({"max": 15, "min": 0, "xmax": 1.5, "xmin": 0, "mult": 7}));
        let (_, errs) = run(schema, bad);
        assert_eq!(
            errs,
            vec![
                "spec.max: Invalid value: 15: spec.max in body should be less than or equal to 10",
                "spec.min: Invalid value: 0: spec.min in body should be greater than or equal to 1",
                "spec.mult: Invalid value: 7: spec.mult in body should be a multiple of 5",
                "spec.xmax: Invalid value: 1.5: spec.xmax in body should be less than 1.5",
                "spec.xmin: Invalid value: 0: spec.xmin in body should be greater than 0",
            ]
        );
    }

    #[test]
    fn string_constraints() {
        let schema = with_spec(json!({
            "type": "object",
            "properties": {
                "short": {"type": "string", "minLength": 3},
                "long": {"type": "string", "maxLength": 5},
                "one": {"type": "string", "maxLength": 1},
                "cron": {"type": "string", "pattern": "^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$"}
            }
        }));
        let ok =
            resource(json!({"short": "héé", "long": "ééééé", "one": "é", "cron": "* * * * */5"}));
        assert!(errors(schema.clone(), ok).is_empty());
        let bad =
            resource(json!({"short": "ab", "long": "abcdef", "one": "ab", "cron": "* * * *"}));
        let errs = errors(schema, bad);
        let shown: Vec<String> = errs.iter().map(FieldError::display).collect();
        assert_eq!(
            shown,
            vec![
                r#"spec.cron: Invalid value: "* * * *": spec.cron in body should match '^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$'"#,
                "spec.long: Too long: may not be more than 5 bytes",
                "spec.one: Too long: may not be more than 1 byte",
                r#"spec.short: Invalid value: "ab": spec.short in body should be at least 3 chars long"#,
            ]
        );
        assert_eq!(errs[1].reason, "FieldValueTooLong");
    }

    #[test]
    fn array_constraints() {
        let schema = with_spec(json!({
            "type": "object",
            "properties": {
                "few": {"type": "array", "minItems": 2, "items": {"type": "string"}},
                "many": {"type": "array", "maxItems": 3, "items": {"type": "integer"}},
                "unique": {"type": "array", "uniqueItems": true, "items": {"type": "string"}}
            }
        }));
        let ok = resource(json!({"few": ["a", "b"], "many": [1, 2, 3], "unique": ["a", "b"]}));
        assert!(errors(schema.clone(), ok).is_empty());
        let bad = resource(json!({"few": ["a"], "many": [1, 2, 3, 4], "unique": ["a", "a"]}));
        let errs = errors(schema, bad);
        let shown: Vec<String> = errs.iter().map(FieldError::display).collect();
        assert_eq!(
            shown,
            vec![
                "spec.few: Invalid value: 1: spec.few in body should have at least 2 items",
                "spec.many: Too many: 4: must have at most 3 items",
                r#"spec.unique: Invalid value: "": spec.unique in body shouldn't contain duplicates"#,
            ]
        );
        assert_eq!(errs[1].reason, "FieldValueTooMany");
    }

    #[test]
    fn property_count_constraints() {
        let schema = with_spec(json!({
            "type": "object",
            "properties": {
                "labels": {
                    "type": "object",
                    "minProperties": 1,
                    "maxProperties": 2,
                    "additionalProperties": {"type": "string"}
                }
            }
        }));
        assert!(errors(schema.clone(), resource(json!({"labels": {"a": "1"}}))).is_empty());
        let (_, errs) = run(schema.clone(), resource(json!({"labels": {}})));
        assert_eq!(
            errs,
            vec![
                "spec.labels: Invalid value: 0: spec.labels in body should have at least 1 properties"
            ]
        );
        let (_, errs) = run(
            schema,
            resource(json!({"labels": {"a": "1", "b": "2", "c": 3}})),
        );
        // The object is rejected as a whole; its values are not checked further.
        assert_eq!(
            errs,
            vec!["spec.labels: Too many: 3: must have at most 2 items"]
        );
    }

    #[test]
    fn integer_formats_are_range_checked() {
        let schema = with_spec(json!({
            "type": "object",
            "properties": {
                "small": {"type": "integer", "format": "int32"},
                "big": {"type": "integer", "format": "int64"},
                "when": {"type": "string", "format": "date-time"}
            }
        }));
        let ok = resource(
            json!({"small": 2147483647, "big": 9223372036854775807_i64, "when": "whenever"}),
        );
        assert!(errors(schema.clone(), ok).is_empty());
        let bad = resource(json!({"small": 2147483648_i64, "big": 9223372036854775808_u64}));
        let errs = errors(schema, bad);
        let shown: Vec<String> = errs.iter().map(FieldError::display).collect();
        assert_eq!(
            shown,
            vec![
                r#"spec.big: Invalid value: 9223372036854775808: spec.big in body must be of type int64: "9223372036854775808""#,
                r#"spec.small: Invalid value: 2147483648: spec.small in body must be of type int32: "2147483648""#,
            ]
        );
        assert!(errs.iter().all(|e| e.reason == "FieldValueTypeInvalid"));
    }

    // --- int-or-string, embedded resources -----------------------------------

    #[test]
    fn int_or_string_accepts_both_and_nothing_else() {
        let schema = with_spec(json!({
            "type": "object",
            "properties": {"maxSurge": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]}}
        }));
        assert!(errors(schema.clone(), resource(json!({"maxSurge": 1}))).is_empty());
        assert!(errors(schema.clone(), resource(json!({"maxSurge": "25%"}))).is_empty());
        let errs = errors(schema.clone(), resource(json!({"maxSurge": true})));
        assert_eq!(
            errs[0].display(),
            r#"spec.maxSurge: Invalid value: "boolean": spec.maxSurge in body must be of type integer,string: "boolean""#
        );
        let errs = errors(schema, resource(json!({"maxSurge": 1.5})));
        assert_eq!(errs[0].reason, "FieldValueTypeInvalid");
    }

    fn embedded_schema() -> Value {
        with_spec(json!({
            "type": "object",
            "properties": {
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": true,
                    "properties": {
                        "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}
                    }
                }
            }
        }))
    }

    #[test]
    fn embedded_resource_keeps_type_meta_and_metadata() {
        let template = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cm", "labels": {"a": "b"}, "whatever": 1},
            "spec": {"size": 1, "junk": 2},
            "junk": 3
        });
        let (out, errs) = run(embedded_schema(), resource(json!({"template": template})));
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(
            out["spec"]["template"],
            json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "cm", "labels": {"a": "b"}, "whatever": 1},
                "spec": {"size": 1}
            })
        );
    }

    #[test]
    fn embedded_resource_needs_api_version_and_kind() {
        let (_, errs) = run(
            embedded_schema(),
            resource(json!({"template": {"kind": ""}})),
        );
        assert_eq!(
            errs,
            vec![
                "spec.template.apiVersion: Required value: must not be empty",
                r#"spec.template.kind: Invalid value: "": must not be empty"#,
            ]
        );
    }

    // --- defaults ----------------------------------------------------------

    #[test]
    fn defaults_are_applied() {
        let schema = with_spec(json!({
            "type": "object",
            "properties": {
                "cronSpec": {"type": "string", "default": "5 0 * * *"},
                "replicas": {"type": "integer", "minimum": 1, "default": 1},
                "image": {"type": "string"},
                "given": {"type": "string", "default": "unused"}
            }
        }));
        let (out, errs) = run(schema, resource(json!({"image": "img", "given": "mine"})));
        assert!(errs.is_empty());
        assert_eq!(
            out["spec"],
            json!({"cronSpec": "5 0 * * *", "replicas": 1, "image": "img", "given": "mine"})
        );
    }

    #[test]
    fn defaults_nest_prune_and_need_a_parent() {
        let schema = json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "default": {},
                    "properties": {
                        "strategy": {
                            "type": "object",
                            "default": {"type": "Canary", "junk": 1},
                            "properties": {
                                "type": {"type": "string"},
                                "maxSurge": {"x-kubernetes-int-or-string": true, "default": "25%"}
                            }
                        }
                    }
                },
                "status": {
                    "type": "object",
                    "properties": {"phase": {"type": "string", "default": "Pending"}}
                }
            }
        });
        let (out, errs) = run(schema, json!({"apiVersion": "v1", "kind": "K"}));
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(
            out,
            json!({
                "apiVersion": "v1",
                "kind": "K",
                "spec": {"strategy": {"type": "Canary", "maxSurge": "25%"}}
            })
        );
    }

    #[test]
    fn defaults_apply_in_list_items_and_map_values() {
        let schema = with_spec(json!({
            "type": "object",
            "properties": {
                "steps": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"weight": {"type": "integer", "default": 10}}}
                },
                "ports": {
                    "type": "object",
                    "additionalProperties": {"type": "integer", "default": 80}
                }
            }
        }));
        let obj =
            resource(json!({"steps": [{}, {"weight": 5}], "ports": {"http": null, "https": 443}}));
        let (out, errs) = run(schema, obj);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(out["spec"]["steps"], json!([{"weight": 10}, {"weight": 5}]));
        assert_eq!(out["spec"]["ports"], json!({"http": 80, "https": 443}));
    }

    #[test]
    fn defaulted_value_is_validated() {
        let schema = with_spec(json!({
            "type": "object",
            "properties": {"replicas": {"type": "integer", "minimum": 1, "default": 0}}
        }));
        let (_, errs) = run(schema, resource(json!({})));
        assert_eq!(
            errs,
            vec![
                "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"
            ]
        );
    }

    // --- paths and multiple errors -------------------------------------------

    #[test]
    fn nested_list_element_paths() {
        let obj = resource(json!({
            "replicas": 1,
            "strategy": {"canary": {"steps": [
                {"setWeight": 10},
                {"pause": {"duration": true}},
                {"setWeight": "half"}
            ]}}
        }));
        let errs = errors(rollout_schema(), obj);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "spec.strategy.canary.steps[1].pause.duration",
                "spec.strategy.canary.steps[2].setWeight",
            ]
        );
        assert_eq!(
            errs[0].message,
            r#"Invalid value: "boolean": spec.strategy.canary.steps[1].pause.duration in body must be of type integer,string: "boolean""#
        );
    }

    #[test]
    fn multi_error_object_returns_all_errors() {
        let schema = with_spec(json!({
            "type": "object",
            "required": ["image", "replicas"],
            "properties": {
                "image": {"type": "string"},
                "replicas": {"type": "integer", "maximum": 10},
                "mode": {"type": "string", "enum": ["Fast", "Slow"]},
                "name": {"type": "string", "maxLength": 3},
                "items": {"type": "array", "items": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}}
            }
        }));
        let obj = resource(json!({
            "replicas": 11,
            "mode": "Medium",
            "name": "toolong",
            "items": [{"id": "a"}, {"other": 1}]
        }));
        let errs = errors(schema, obj);
        let shown: Vec<String> = errs.iter().map(FieldError::display).collect();
        assert_eq!(
            shown,
            vec![
                "spec.items[1].id: Required value",
                r#"spec.mode: Unsupported value: "Medium": supported values: "Fast", "Slow""#,
                "spec.name: Too long: may not be more than 3 bytes",
                "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10",
                "spec.image: Required value",
            ]
        );
        let reasons: Vec<&str> = errs.iter().map(|e| e.reason).collect();
        assert_eq!(
            reasons,
            vec![
                "FieldValueRequired",
                "FieldValueNotSupported",
                "FieldValueTooLong",
                "FieldValueInvalid",
                "FieldValueRequired",
            ]
        );
    }

    // --- composition -------------------------------------------------------

    #[test]
    fn one_of_any_of_all_of_not() {
        let schema = with_spec(json!({
            "type": "object",
            "properties": {
                "a": {"type": "integer"},
                "b": {"type": "integer"}
            },
            "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
            "not": {"required": ["c"]}
        }));
        assert!(errors(schema.clone(), resource(json!({"a": 1}))).is_empty());
        let (_, errs) = run(schema.clone(), resource(json!({"a": 1, "b": 2})));
        assert_eq!(
            errs,
            vec![
                r#"<nil>: Invalid value: "": "spec" must validate one and only one schema (oneOf). Found 2 valid alternatives"#
            ]
        );
        let (_, errs) = run(schema, resource(json!({})));
        assert_eq!(
            errs,
            vec![
                r#"<nil>: Invalid value: "": "spec" must validate one and only one schema (oneOf). Found none valid"#,
                "spec.a: Required value",
            ]
        );

        let any = with_spec(json!({
            "type": "object",
            "properties": {"x": {"anyOf": [{"type": "integer"}, {"type": "string", "minLength": 2}]}}
        }));
        assert!(errors(any.clone(), resource(json!({"x": 3}))).is_empty());
        assert!(errors(any.clone(), resource(json!({"x": "ab"}))).is_empty());
        let (_, errs) = run(any, resource(json!({"x": "a"})));
        assert_eq!(
            errs,
            vec![
                r#"<nil>: Invalid value: "": "spec.x" must validate at least one schema (anyOf)"#,
                r#"spec.x: Invalid value: "string": spec.x in body must be of type integer: "string""#,
            ]
        );

        let all = with_spec(json!({
            "type": "object",
            "properties": {"x": {"type": "integer", "allOf": [{"minimum": 1}, {"maximum": 5}]}}
        }));
        assert!(errors(all.clone(), resource(json!({"x": 3}))).is_empty());
        let (_, errs) = run(all, resource(json!({"x": 9})));
        assert_eq!(
            errs,
            vec![
                "spec.x: Invalid value: 9: spec.x in body should be less than or equal to 5",
                r#"<nil>: Invalid value: "": "spec.x" must validate all the schemas (allOf)"#,
            ]
        );

        let not = with_spec(json!({
            "type": "object",
            "properties": {"x": {"type": "string", "not": {"enum": ["forbidden"]}}}
        }));
        let (_, errs) = run(not, resource(json!({"x": "forbidden"})));
        assert_eq!(
            errs,
            vec![r#"<nil>: Invalid value: "": "spec.x" must not validate the schema (not)"#]
        );
    }

    #[test]
    fn composition_does_not_shape_pruning() {
        let schema = with_spec(json!({
            "type": "object",
            "properties": {"a": {"type": "string"}},
            "anyOf": [{"properties": {"b": {"type": "string"}}}]
        }));
        let (out, _) = run(schema, resource(json!({"a": "x", "b": "y"})));
        assert_eq!(out["spec"], json!({"a": "x"}));
    }

    // --- robustness --------------------------------------------------------

    #[test]
    fn malformed_schemas_never_panic_and_are_permissive() {
        let schemas = [
            Value::Null,
            json!(true),
            json!(false),
            json!("object"),
            json!([1, 2]),
            json!({"type": 5, "properties": "nope", "required": "spec"}),
            json!({"type": "object", "properties": {"spec": {"type": "banana", "minimum": "x", "maxLength": -1}}}),
            json!({"type": "object", "properties": {"spec": {"type": "string", "pattern": "(unclosed"}}}),
            json!({"type": "object", "properties": {"spec": {"type": "array", "items": [{"type": "string"}], "minItems": 1.5}}}),
            json!({"type": "object", "properties": {"spec": {"enum": "a", "allOf": {"x": 1}, "anyOf": [], "oneOf": [true], "not": 3}}}),
            json!({"type": "object", "properties": {"spec": {"type": "object", "additionalProperties": false, "default": null}}}),
            json!({"type": "object", "properties": {"spec": {"type": "integer", "format": "int32", "multipleOf": 0}}}),
        ];
        let objects = [
            resource(json!({"a": [1, {"b": null}]})),
            resource(json!("(anything")),
            resource(json!(["x"])),
            resource(json!(7)),
            json!(null),
            json!("string"),
            json!([{"apiVersion": 1}]),
        ];
        for schema in &schemas {
            for obj in &objects {
                let mut obj = obj.clone();
                let _ = prune_default_validate(schema, &mut obj);
            }
        }
        // A root schema that is not an object keeps everything and accepts.
        let obj = resource(json!({"a": 1}));
        assert_eq!(run(Value::Null, obj.clone()), (obj.clone(), vec![]));
        assert_eq!(run(json!(true), obj.clone()), (obj, vec![]));
        // An uncompilable pattern is skipped.
        let schema = with_spec(json!({"type": "string", "pattern": "(unclosed"}));
        assert!(errors(schema, resource(json!("x"))).is_empty());
    }

    // --- wording helpers -----------------------------------------------------

    #[test]
    fn display_joins_field_and_message() {
        let err = required("spec.image", "");
        assert_eq!(err.display(), "spec.image: Required value");
    }

    #[test]
    fn go_style_rendering() {
        assert_eq!(go_quote("a\"b\\c\nd\u{1}"), r#""a\"b\\c\nd\x01""#);
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(10.0), "10");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(123456.5), "123456.5");
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(1.5e21), "1.5e+21");
        assert_eq!(go_float(-2.5e-7), "-2.5e-07");
        assert_eq!(format_bound(10.0, true), "10");
        assert_eq!(format_bound(10.5, true), "10.5");
        assert_eq!(render_value(&json!({"a": [1]})), r#"{"a":[1]}"#);
        assert_eq!(render_value(&json!(false)), "false");
    }
}
