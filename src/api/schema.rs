//! Hand-written schema fragments for fields whose shape is free-form (plugin configuration, routers
//! Ramp does not model yet). The API server keeps such fields as they are instead of pruning them.

use schemars::{Schema, SchemaGenerator, json_schema};

/// An object whose fields are kept as written.
pub fn preserve_unknown_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
        "nullable": true
    })
}

/// An array whose items are kept as written.
pub fn preserve_unknown_array(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": { "type": "object", "x-kubernetes-preserve-unknown-fields": true },
        "nullable": true
    })
}

/// Any JSON value, kept as written.
pub fn preserve_unknown_any(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "x-kubernetes-preserve-unknown-fields": true,
        "nullable": true
    })
}
