//! `successCondition` and `failureCondition` (reference 6.8): Go `expr` expressions over the provider's
//! `result`, with Argo's helper functions, turned into a measurement phase.

use expr::{Context, Environment, Value};

use crate::api::AnalysisPhase;

/// What a provider measured, as the expressions see it.
pub type MetricValue = Value;

/// The phase of one measurement from its result (Argo's `EvaluateResult`), or the error message that
/// makes the measurement `Error`.
pub fn evaluate(
    result: &MetricValue,
    success_condition: &str,
    failure_condition: &str,
) -> Result<AnalysisPhase, String> {
    let success = (!success_condition.is_empty())
        .then(|| condition("successCondition", success_condition, result))
        .transpose()?;
    let failure = (!failure_condition.is_empty())
        .then(|| condition("failureCondition", failure_condition, result))
        .transpose()?;
    let (success, failed) = match (success, failure) {
        (None, None) => return Ok(AnalysisPhase::Successful),
        (Some(success), None) => (success, !success),
        (None, Some(failed)) => (!failed, failed),
        (Some(success), Some(failed)) => (success, failed),
    };
    Ok(if failed {
        AnalysisPhase::Failed
    } else if !success {
        AnalysisPhase::Inconclusive
    } else {
        AnalysisPhase::Successful
    })
}

/// Checks that an expression parses, so a broken condition is reported when the template is validated
/// rather than at the first measurement.
pub fn check(expression: &str) -> Result<(), String> {
    expr::compile(expression)
        .map(|_| ())
        .map_err(|e| one_line(&e.to_string()))
}

/// A parser error drawn over several lines (position, excerpt, caret, expectation) as one line:
/// `expected ... at 1:12`.
fn one_line(error: &str) -> String {
    let lines = || error.lines().map(str::trim);
    let position = lines().find_map(|l| l.strip_prefix("--> "));
    let detail = lines()
        .find_map(|l| l.strip_prefix("= "))
        .or_else(|| lines().find(|l| !l.is_empty()))
        .unwrap_or(error);
    match position {
        Some(at) => format!("{detail} at {at}"),
        None => detail.to_string(),
    }
}

fn condition(field: &str, expression: &str, result: &MetricValue) -> Result<bool, String> {
    let failure = |detail: String| format!("could not evaluate {field} \"{expression}\": {detail}");
    let mut context = Context::default();
    context.insert("result", result.clone());
    match environment().eval(expression, &context) {
        Ok(Value::Bool(verdict)) => Ok(verdict),
        Ok(other) => Err(failure(format!(
            "expected bool, but got {}",
            go_type(&other)
        ))),
        Err(_) if is_empty(result) => Err(failure(
            "metric result is nil or empty: no data returned from the metric provider".into(),
        )),
        Err(e) => Err(failure(e.to_string())),
    }
}

fn is_empty(result: &MetricValue) -> bool {
    match result {
        Value::Nil => true,
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// The name Go's `%T` gives a value of this kind, as Argo's messages print it.
fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Nil => "<nil>",
        Value::Bool(_) => "bool",
        Value::Integer(_) => "int",
        Value::Float(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) | Value::Bytes(_) => "[]interface {}",
        Value::Map(_) | Value::KeyedMap(_) => "map[string]interface {}",
    }
}

/// expr's built-ins plus Argo's helpers: `asInt`, `asFloat`, `isNaN`, `isInf`, `isNil`, `default`.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.add_function("asInt", |call| {
        let text = one(&call.args, "asInt")?;
        text.trim()
            .parse::<i64>()
            .map(Value::Integer)
            .map_err(|e| format!("asInt({text}): {e}").into())
    });
    env.add_function("asFloat", |call| {
        let text = one(&call.args, "asFloat")?;
        text.trim()
            .parse::<f64>()
            .map(Value::Float)
            .map_err(|e| format!("asFloat({text}): {e}").into())
    });
    env.add_function("isNaN", |call| {
        Ok(Value::Bool(float(&call.args, "isNaN")?.is_nan()))
    });
    env.add_function("isInf", |call| {
        Ok(Value::Bool(float(&call.args, "isInf")?.is_infinite()))
    });
    env.add_function("isNil", |call| {
        Ok(Value::Bool(call.args.first().is_none_or(Value::is_nil)))
    });
    env.add_function("default", |call| match call.args.as_slice() {
        [value, fallback] if value.is_nil() => Ok(fallback.clone()),
        [value, _] => Ok(value.clone()),
        _ => Err("default() takes a value and a fallback".to_string().into()),
    });
    env
}

/// The single argument of `asInt`/`asFloat` as text (numbers are formatted, as Go's `%v` does).
fn one(args: &[Value], name: &str) -> expr::Result<String> {
    match args {
        [Value::String(text)] => Ok(text.clone()),
        [Value::Integer(n)] => Ok(n.to_string()),
        [Value::Float(f)] => Ok(f.to_string()),
        [other] => Err(format!("{name}: cannot convert {}", go_type(other)).into()),
        _ => Err(format!("{name}() takes exactly one argument").into()),
    }
}

fn float(args: &[Value], name: &str) -> expr::Result<f64> {
    match args {
        [Value::Float(f)] => Ok(*f),
        [Value::Integer(n)] => Ok(*n as f64),
        [other] => Err(format!("{name}: expected a number, got {}", go_type(other)).into()),
        _ => Err(format!("{name}() takes exactly one argument").into()),
    }
}

/// Converts a JSON value (a Web provider's body) to what expressions see: objects become maps,
/// numbers `float64`, as Go's JSON decoding gives Argo.
pub fn from_json(value: &serde_json::Value) -> MetricValue {
    match value {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(items) => Value::Array(items.iter().map(from_json).collect()),
        serde_json::Value::Object(map) => Value::Map(
            map.iter()
                .map(|(key, value)| (key.clone(), from_json(value)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AnalysisPhase::*;

    fn floats(values: &[f64]) -> MetricValue {
        Value::Array(values.iter().map(|v| Value::Float(*v)).collect())
    }

    #[test]
    fn argo_truth_table() {
        let r = floats(&[0.5]);
        // (success, failure) -> phase
        let cases = [
            ("", "", Successful),
            ("result[0] < 1", "", Successful),
            ("result[0] > 1", "", Failed),
            ("", "result[0] > 1", Successful),
            ("", "result[0] < 1", Failed),
            ("result[0] > 1", "result[0] > 1", Inconclusive),
            ("result[0] < 1", "result[0] < 1", Failed),
            ("result[0] < 1", "result[0] > 1", Successful),
        ];
        for (success, failure, phase) in cases {
            assert_eq!(
                evaluate(&r, success, failure),
                Ok(phase),
                "success={success:?} failure={failure:?}"
            );
        }
    }

    #[test]
    fn scalars_vectors_and_builtins() {
        assert_eq!(
            evaluate(&Value::Float(0.99), "result >= 0.95", ""),
            Ok(Successful)
        );
        assert_eq!(
            evaluate(&floats(&[10.0, 20.0]), "all(result, # < 100)", ""),
            Ok(Successful)
        );
        assert_eq!(
            evaluate(&floats(&[10.0, 200.0]), "any(result, # > 100)", ""),
            Ok(Successful)
        );
        assert_eq!(
            evaluate(&floats(&[1.0, 2.0]), "len(result) == 2", ""),
            Ok(Successful)
        );
    }

    #[test]
    fn argo_helpers() {
        let text = Value::String("42".into());
        assert_eq!(evaluate(&text, "asInt(result) == 42", ""), Ok(Successful));
        assert_eq!(
            evaluate(&Value::String("0.5".into()), "asFloat(result) < 1", ""),
            Ok(Successful)
        );
        assert_eq!(
            evaluate(&floats(&[f64::NAN]), "isNaN(result[0])", ""),
            Ok(Successful)
        );
        assert_eq!(
            evaluate(&Value::Float(f64::INFINITY), "isInf(result)", ""),
            Ok(Successful)
        );
        assert_eq!(evaluate(&Value::Nil, "isNil(result)", ""), Ok(Successful));
        assert_eq!(
            evaluate(&Value::Nil, "default(result, 0) == 0", ""),
            Ok(Successful)
        );
        assert_eq!(
            evaluate(&Value::Float(3.0), "default(result, 0) == 3", ""),
            Ok(Successful)
        );
        let body = from_json(&serde_json::json!({"major": "1", "ok": true}));
        assert_eq!(evaluate(&body, "result.major == '1'", ""), Ok(Successful));
        assert_eq!(evaluate(&body, "result.ok", ""), Ok(Successful));
    }

    #[test]
    fn errors_carry_argo_messages() {
        let empty = floats(&[]);
        assert_eq!(
            evaluate(&empty, "result[0] < 0.05", ""),
            Err("could not evaluate successCondition \"result[0] < 0.05\": metric result is nil or empty: no data returned from the metric provider".into())
        );
        assert_eq!(
            evaluate(&Value::Float(1.0), "", "result + 1"),
            Err("could not evaluate failureCondition \"result + 1\": expected bool, but got float64".into())
        );
        let bad = evaluate(&Value::String("x".into()), "asInt(result) > 1", "").unwrap_err();
        assert!(
            bad.starts_with("could not evaluate successCondition \"asInt(result) > 1\": "),
            "{bad}"
        );
    }

    #[test]
    fn check_rejects_what_does_not_parse() {
        assert!(check("result[0] < 0.05").is_ok());
        assert!(check("result[0] <").is_err());
        assert!(check("all(result, # < 1)").is_ok());
    }
}
