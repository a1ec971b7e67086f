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

/// Blocks the samples are averaged into before [`slope_interval`] fits its line.
pub const SLOPE_BLOCKS: usize = 6;

/// Student's t for a two-sided 95 % interval with `SLOPE_BLOCKS - 2` = 4 degrees of freedom.
const T_95_FOUR_DEGREES: f64 = 2.776;

/// The least-squares slope of `points` and the half-width of its 95 % confidence interval, as
/// `(slope, half_width)`; `None` with fewer than two points per block.
///
/// RSS read every 10 s is autocorrelated (the allocator holds memory for minutes), so a confidence
/// interval over the raw samples would be far too narrow. The points are averaged in
/// [`SLOPE_BLOCKS`] consecutive blocks first and the line is fitted to the block means, whose errors
/// are close to independent; the interval then uses t with `SLOPE_BLOCKS - 2` degrees of freedom.
/// The last few points that do not fill a whole block are left out.
pub fn slope_interval(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let per_block = points.len() / SLOPE_BLOCKS;
    if per_block < 2 {
        return None;
    }
    let means: Vec<(f64, f64)> = points
        .chunks(per_block)
        .take(SLOPE_BLOCKS)
        .map(|block| {
            let n = block.len() as f64;
            (
                block.iter().map(|p| p.0).sum::<f64>() / n,
                block.iter().map(|p| p.1).sum::<f64>() / n,
            )
        })
        .collect();
    let gradient = slope(&means);
    let n = means.len() as f64;
    let mean_x = means.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = means.iter().map(|p| p.1).sum::<f64>() / n;
    let spread_x: f64 = means.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let residuals: f64 = means
        .iter()
        .map(|p| (p.1 - mean_y - gradient * (p.0 - mean_x)).powi(2))
        .sum();
    if spread_x == 0.0 {
        return None;
    }
    let standard_error = (residuals / (n - 2.0) / spread_x).sqrt();
    Some((gradient, T_95_FOUR_DEGREES * standard_error))
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

    #[test]
    fn a_straight_line_has_an_exact_slope_and_no_uncertainty() {
        let line: Vec<(f64, f64)> = (0..30)
            .map(|i| (f64::from(i), 2.0 * f64::from(i)))
            .collect();
        let (gradient, half_width) = slope_interval(&line).unwrap();
        assert!((gradient - 2.0).abs() < 1e-9, "{gradient}");
        assert!(half_width < 1e-9, "{half_width}");
    }

    #[test]
    fn noise_around_a_flat_line_gives_an_interval_that_holds_zero() {
        // Every third sample 101, the others 99.5: a mean of 100, no trend, and an interval wide
        // enough to say so.
        let flat: Vec<(f64, f64)> = (0..36)
            .map(|i| (f64::from(i), 100.0 + if i % 3 == 0 { 1.0 } else { -0.5 }))
            .collect();
        let (gradient, half_width) = slope_interval(&flat).unwrap();
        assert!(gradient.abs() <= half_width, "{gradient} +- {half_width}");
        // A steady climb of the same noise's size per block is told apart from flat.
        let climbing: Vec<(f64, f64)> = flat.iter().map(|&(x, y)| (x, y + 0.5 * x)).collect();
        let (gradient, half_width) = slope_interval(&climbing).unwrap();
        assert!(gradient - half_width > 0.0, "{gradient} +- {half_width}");
    }

    #[test]
    fn too_few_samples_give_no_interval() {
        let few: Vec<(f64, f64)> = (0..11).map(|i| (f64::from(i), 1.0)).collect();
        assert_eq!(slope_interval(&few), None);
    }
}
