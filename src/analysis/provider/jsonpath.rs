//! The subset of Kubernetes JSONPath the Web provider's `jsonPath` uses: `{$}`, `{$.a.b}`, `{$.items[0]}`,
//! `{$['key.with.dots']}` and `{.a.b}`. Filters, wildcards and ranges are not supported and are reported
//! as errors rather than guessed at.

use serde_json::Value;

/// The first value `path` selects in `document`, or why it selects nothing.
pub fn select<'v>(document: &'v Value, path: &str) -> Result<&'v Value, String> {
    let inner = path
        .trim()
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path.trim());
    let mut rest = inner.strip_prefix('$').unwrap_or(inner);
    let mut cursor = document;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            let end = after
                .find(']')
                .ok_or_else(|| format!("jsonPath {path:?}: unclosed '['"))?;
            let key = &after[..end];
            cursor = step(cursor, key, path)?;
            rest = &after[end + 1..];
        } else if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            if end == 0 {
                return Err(format!("jsonPath {path:?}: empty field name"));
            }
            cursor = step(cursor, &after[..end], path)?;
            rest = &after[end..];
        } else {
            return Err(format!("jsonPath {path:?}: unsupported syntax at {rest:?}"));
        }
    }
    Ok(cursor)
}

fn step<'v>(cursor: &'v Value, key: &str, path: &str) -> Result<&'v Value, String> {
    let quoted = key
        .strip_prefix('\'')
        .and_then(|k| k.strip_suffix('\''))
        .or_else(|| key.strip_prefix('"').and_then(|k| k.strip_suffix('"')));
    let found = match (quoted, cursor) {
        (Some(name), Value::Object(map)) => map.get(name),
        (None, Value::Array(items)) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        (None, Value::Object(map)) if key != "*" => map.get(key),
        _ => None,
    };
    found.ok_or_else(|| format!("jsonPath {path:?}: {key} is not found"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selects_fields_indexes_and_quoted_keys() {
        let doc = json!({"data": {"ok": true, "items": [1, 2], "a.b": "x"}});
        assert_eq!(select(&doc, "{$}").unwrap(), &doc);
        assert_eq!(select(&doc, "{$.data.ok}").unwrap(), &json!(true));
        assert_eq!(select(&doc, "{.data.items[1]}").unwrap(), &json!(2));
        assert_eq!(select(&doc, "{$.data['a.b']}").unwrap(), &json!("x"));
        assert!(
            select(&doc, "{$.data.missing}")
                .unwrap_err()
                .contains("missing is not found")
        );
        assert!(select(&doc, "{$.data.items[*]}").is_err());
    }
}
