//! A scenario's figures: a table for people and one JSON line for programs.

use serde_json::{Map, Value, json};

pub struct Report {
    scenario: String,
    rows: Vec<(String, String, String)>,
    summary: Map<String, Value>,
}

impl Report {
    pub fn new(scenario: &str) -> Report {
        let mut summary = Map::new();
        summary.insert("scenario".into(), json!(scenario));
        Report {
            scenario: scenario.into(),
            rows: Vec::new(),
            summary,
        }
    }

    /// A figure in the table (with its target, if any) and in the JSON summary under `key`.
    pub fn figure(&mut self, key: &str, label: &str, value: Value, unit: &str, target: &str) {
        let shown = match &value {
            Value::Number(n) => match n.as_f64() {
                Some(f) if n.is_f64() => format!("{f:.3} {unit}"),
                _ => format!("{n} {unit}"),
            },
            Value::String(s) => format!("{s} {unit}"),
            other => format!("{other} {unit}"),
        };
        self.rows
            .push((label.into(), shown.trim().to_string(), target.into()));
        self.summary.insert(key.into(), value);
    }

    /// A value in the JSON summary only (parameters, breakdowns).
    pub fn field(&mut self, key: &str, value: Value) {
        self.summary.insert(key.into(), value);
    }

    /// Prints the table, then the JSON summary as the last line of stdout.
    pub fn print(&self) {
        let width = |column: usize| {
            self.rows
                .iter()
                .map(|row| match column {
                    0 => row.0.len(),
                    1 => row.1.len(),
                    _ => row.2.len(),
                })
                .max()
                .unwrap_or(0)
        };
        let (w0, w1) = (width(0).max(6), width(1).max(5));
        println!();
        println!("scenario: {}", self.scenario);
        println!("{:<w0$}  {:>w1$}  target", "metric", "value");
        println!("{:-<w0$}  {:->w1$}  ------", "", "");
        for (label, value, target) in &self.rows {
            println!("{label:<w0$}  {value:>w1$}  {target}");
        }
        println!();
        println!("{}", Value::Object(self.summary.clone()));
    }
}

/// Rounds to three decimals for the summary.
pub fn round3(value: f64) -> Value {
    json!((value * 1000.0).round() / 1000.0)
}

/// The `q` quantile (0 to 1) of `values`, nearest rank.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Least-squares slope of `(x, y)` points.
pub fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let covariance: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let variance: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if variance == 0.0 {
        0.0
    } else {
        covariance / variance
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_take_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&values, 0.5), 50.0);
        assert_eq!(quantile(&values, 0.99), 99.0);
        assert_eq!(quantile(&[3.0], 0.99), 3.0);
    }

    #[test]
    fn the_slope_of_a_line_is_its_gradient() {
        assert_eq!(slope(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]), 2.0);
        assert_eq!(slope(&[(0.0, 4.0), (10.0, 4.0)]), 0.0);
    }
}
