//! The CRD's structural schema, checked offline: what the API server checks before CEL.
//!
//! A small walker over what a structural schema can say: `type` (with `nullable`), `required`,
//! `enum`, `properties` and `additionalProperties`, `items`, `minLength`/`maxLength`,
//! `minItems`/`maxItems`, `minimum`/`maximum`, `pattern`. An unknown field is an error, as with
//! the API server's strict field validation (`kubectl apply --validate=strict`, the default); the
//! API server would otherwise prune it silently. `format` is not checked: the janitor's own checks
//! parse every field that has one.

use regex::Regex;
use serde_json::Value;

/// One field that breaks the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// `spec.prometheus.url`, `spec.static.urls[0]`.
    pub field: String,
    pub message: String,
}

/// Every violation of `schema` by `value`, at `path`.
pub fn check(schema: &Value, value: &Value, path: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    walk(schema, value, path, &mut out);
    out
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn walk(schema: &Value, value: &Value, path: &str, out: &mut Vec<Violation>) {
    let mut fail = |message: String| {
        out.push(Violation {
            field: path.to_string(),
            message,
        })
    };
    if value.is_null() {
        if schema.get("nullable").and_then(Value::as_bool) != Some(true) {
            fail("must not be null".into());
        }
        return;
    }
    if let Some(want) = schema.get("type").and_then(Value::as_str) {
        let got = type_name(value);
        let fits = got == want || (want == "number" && got == "integer");
        if !fits {
            fail(format!("must be of type {want}, not {got}"));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            let names: Vec<String> = allowed.iter().map(Value::to_string).collect();
            fail(format!(
                "unsupported value {value}: expected one of {}",
                names.join(", ")
            ));
        }
    }
    match value {
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
                if len < min {
                    fail(format!("must be at least {min} characters long"));
                }
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
                if len > max {
                    fail(format!("must be at most {max} characters long"));
                }
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                // The patterns come from our own types; one that does not compile is a bug there.
                let re = Regex::new(pattern).expect("the CRD's patterns compile");
                if !re.is_match(s) {
                    fail(format!("{s:?} does not match {pattern}"));
                }
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
                if x < min {
                    fail(format!("must be at least {min}"));
                }
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
                if x > max {
                    fail(format!("must be at most {max}"));
                }
            }
        }
        Value::Array(items) => {
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
                if (items.len() as u64) < min {
                    fail(format!("must have at least {min} item(s)"));
                }
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
                if items.len() as u64 > max {
                    fail(format!("must have at most {max} item(s)"));
                }
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk(item_schema, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                for name in required.iter().filter_map(Value::as_str) {
                    if !map.contains_key(name) {
                        out.push(Violation {
                            field: join(path, name),
                            message: "is required".into(),
                        });
                    }
                }
            }
            let preserve = schema
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                == Some(true);
            let additional = schema.get("additionalProperties");
            for (name, v) in map {
                let field = join(path, name);
                match (properties.and_then(|p| p.get(name)), additional) {
                    (Some(s), _) => walk(s, v, &field, out),
                    (None, Some(s)) if s.is_object() => walk(s, v, &field, out),
                    (None, Some(Value::Bool(true))) => {}
                    _ if preserve => {}
                    _ => out.push(Violation {
                        field,
                        message: "unknown field".into(),
                    }),
                }
            }
        }
        _ => {}
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "required": ["url"], "properties": {
            "url": {"type": "string", "minLength": 1},
            "mode": {"type": "string", "enum": ["A", "B"]},
            "ttl": {"type": "string", "nullable": true, "pattern": "^[0-9]+s$"},
            "urls": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "percent": {"type": "number", "minimum": 0.0, "maximum": 100.0},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}}
        }})
    }

    fn fields(v: Value) -> Vec<(String, String)> {
        check(&schema(), &v, "spec")
            .into_iter()
            .map(|v| (v.field, v.message))
            .collect()
    }

    #[test]
    fn a_fitting_value_passes() {
        let ok = json!({"url": "x", "mode": "A", "ttl": null, "urls": ["a"], "percent": 5,
                        "labels": {"a": "b"}});
        assert_eq!(fields(ok), vec![]);
    }

    #[test]
    fn each_break_names_its_field() {
        let bad = json!({"mode": "C", "ttl": "5m", "urls": [1], "percent": 101.5,
                         "labels": {"a": 1}, "extra": true});
        let got = fields(bad);
        let want = [
            ("spec.url", "is required"),
            ("spec.extra", "unknown field"),
            ("spec.labels.a", "must be of type string, not integer"),
            (
                "spec.mode",
                "unsupported value \"C\": expected one of \"A\", \"B\"",
            ),
            ("spec.percent", "must be at most 100"),
            ("spec.ttl", "\"5m\" does not match ^[0-9]+s$"),
            ("spec.urls[0]", "must be of type string, not integer"),
        ];
        for (field, message) in want {
            assert!(
                got.contains(&(field.to_string(), message.to_string())),
                "{field}: {message} not in {got:?}"
            );
        }
        assert_eq!(got.len(), want.len(), "{got:?}");
    }

    #[test]
    fn empty_strings_and_lists_and_nulls_are_refused_where_the_schema_says() {
        let got = fields(json!({"url": "", "urls": [], "mode": null}));
        assert!(got.contains(&(
            "spec.url".into(),
            "must be at least 1 characters long".into()
        )));
        assert!(got.contains(&("spec.urls".into(), "must have at least 1 item(s)".into())));
        assert!(got.contains(&("spec.mode".into(), "must not be null".into())));
    }
}
