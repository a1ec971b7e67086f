//! Replica math for the canary strategy: how many pods the stable, canary and older ReplicaSets
//! should have for a given weight.
//!
//! This room is pure arithmetic. It knows nothing about Rollout objects: the planner resolves the
//! weight in effect (reference §4.3), picks the stable / new / other ReplicaSets and passes plain
//! numbers in. Every rule here follows `reference/argo-rollouts.md`:
//! - §0 / §4.4: `maxSurge` / `maxUnavailable` resolution ("fenceposts"),
//! - §4.4: basic canary (no trafficRouting): target split, scale up within surge, drain older
//!   ReplicaSets first, scale down within `maxUnavailable` (also in the abort direction, §4.9),
//! - §4.4 "Other RSs" / §4.13: draining ReplicaSets that are neither new nor stable,
//! - §4.5: canary with trafficRouting (`setCanaryScale`, `minPodsPerReplicaSet`,
//!   `dynamicStableScale`).
//!
//! Robustness: every input a user could write is accepted. Arithmetic is done in `i64` (or `i128`
//! for cross-multiplied comparisons) and results are clamped into `0..=i32::MAX`, so nothing here
//! overflows or panics; negative counts or replicas are read as 0.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The replica counts of one ReplicaSet that the math needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RsReplicas {
    /// `spec.replicas` of the ReplicaSet.
    pub spec: i32,
    /// `status.availableReplicas` of the ReplicaSet.
    pub available: i32,
}

// ---------------------------------------------------------------------------------------------
// maxSurge / maxUnavailable
// ---------------------------------------------------------------------------------------------

/// How a percentage is turned into a pod count.
#[derive(Clone, Copy)]
enum Rounding {
    Up,
    Down,
}

/// `maxSurge` resolved against `spec.replicas`.
///
/// Argo reads these fields with the legacy `intstr.GetValueFromIntOrPercent`, where **any string is
/// a percent**, with or without a trailing `%` (§4.4, §10.3): `"25"` and `"25%"` both mean 25 %.
/// A surge percentage rounds up. Integers are taken as they are.
///
/// Errors (a message naming the value) for a string that is not an integer percentage and for a
/// negative value (Kubernetes and Argo validation reject those too).
pub fn resolve_max_surge(value: &IntOrString, replicas: i32) -> Result<i32, String> {
    resolve_int_or_percent("maxSurge", value, replicas, Rounding::Up)
}

/// `maxUnavailable` resolved against `spec.replicas`: like [`resolve_max_surge`], but a
/// percentage rounds down (§4.4).
pub fn resolve_max_unavailable(value: &IntOrString, replicas: i32) -> Result<i32, String> {
    resolve_int_or_percent("maxUnavailable", value, replicas, Rounding::Down)
}

/// Argo's fenceposts (`resolveFenceposts`, §4.4): `(surge, unavailable)` where
/// - both 0 ⇒ unavailable = 1, so a rollout can always make progress,
/// - unavailable is capped at `replicas`,
/// - `replicas <= 0` ⇒ unavailable = 0.
pub fn resolve_fenceposts(
    max_surge: &IntOrString,
    max_unavailable: &IntOrString,
    replicas: i32,
) -> Result<(i32, i32), String> {
    let surge = resolve_max_surge(max_surge, replicas)?;
    let mut unavailable = resolve_max_unavailable(max_unavailable, replicas)?;
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    // The cap also covers "replicas 0 => unavailable 0" (negative replicas count as 0).
    Ok((surge, unavailable.min(replicas.max(0))))
}

fn resolve_int_or_percent(
    field: &str,
    value: &IntOrString,
    replicas: i32,
    rounding: Rounding,
) -> Result<i32, String> {
    match value {
        IntOrString::Int(count) if *count < 0 => {
            Err(format!("invalid {field} {count}: must not be negative"))
        }
        IntOrString::Int(count) => Ok(*count),
        IntOrString::String(text) => {
            let percent = parse_percent(text).ok_or_else(|| {
                format!("invalid {field} {text:?}: must be an integer or a percentage like \"25%\"")
            })?;
            if percent < 0 {
                return Err(format!("invalid {field} {text:?}: must not be negative"));
            }
            let scaled = i64::from(percent) * non_negative(replicas);
            let count = match rounding {
                Rounding::Up => ceil_div(scaled, 100),
                Rounding::Down => scaled / 100,
            };
            Ok(to_i32(count))
        }
    }
}

/// `"25%"` or `"25"` → 25. At most one trailing `%`; no spaces, no fractions.
fn parse_percent(text: &str) -> Option<i32> {
    text.strip_suffix('%').unwrap_or(text).parse().ok()
}

// ---------------------------------------------------------------------------------------------
// Basic canary (no trafficRouting), §4.4
// ---------------------------------------------------------------------------------------------

/// Step A of §4.4 (`approximateWeightedCanaryStableReplicaCounts`): the target split
/// `(canary, stable)` of `replicas` pods for `weight` out of `max_weight`.
///
/// Among the candidate splits of `replicas` pods (and of `replicas + 1` pods when `surge > 0`), the
/// one whose canary share is closest to the weight wins (the earlier candidate wins a tie). A side
/// may only be left with 0 pods when the weight is 0 or `max_weight`, or when there is a single
/// replica and no surge; so any weight strictly between gives the canary at least one pod when
/// possible, and the two counts may add up to `replicas + 1`.
///
/// `replicas <= 0` gives `(0, 0)`. `max_weight` below 1 is read as 1 and `weight` is clamped into
/// `0..=max_weight`.
pub fn approximate_weighted_counts(
    replicas: i32,
    weight: i32,
    max_weight: i32,
    surge: i32,
) -> (i32, i32) {
    let replicas = non_negative(replicas);
    if replicas == 0 {
        return (0, 0);
    }
    let max_weight = i64::from(max_weight.max(1));
    let weight = i64::from(weight).clamp(0, max_weight);
    let surge = non_negative(surge);

    let exact = replicas * weight; // canary share is exact / max_weight
    let ceil = ceil_div(exact, max_weight);
    let floor = exact / max_weight;
    // "tied": n·W/M has a fractional part of exactly one half. The rounded-down split is then not
    // offered: with strict "closer" comparison the earlier rounded-up split would win the tie
    // anyway, so this only matters when the rounded-up split is not allowed (see the fallback).
    let tied = |total: i64| 2 * ((total * weight) % max_weight) == max_weight;
    let zero_allowed = weight == max_weight || weight == 0 || (replicas == 1 && surge == 0);

    // The candidate splits, as (canary, total), in Argo's order.
    let mut options: Vec<(i64, i64)> = Vec::with_capacity(4);
    if ceil < replicas || zero_allowed {
        options.push((ceil, replicas));
    }
    let floor_allowed = floor != 0 || zero_allowed;
    if !tied(replicas) && floor_allowed {
        options.push((floor, replicas));
    }
    if surge > 0 {
        options.push((ceil, replicas + 1));
        if !tied(replicas + 1) && floor_allowed {
            options.push((floor, replicas + 1));
        }
    }

    // Distance of a split's canary share from the weight, as a fraction
    // |canary·M − W·total| / total, compared by cross-multiplication (exact, no overflow in i128).
    let distance = |(canary, total): (i64, i64)| {
        (
            i128::from(canary * max_weight - weight * total).abs(),
            i128::from(total),
        )
    };
    let closer = |a: (i128, i128), b: (i128, i128)| a.0 * b.1 < b.0 * a.1;

    // No candidate at all is possible when the only ones are a tie and "all canary" without surge
    // (e.g. R=2, W=75, surge 0): the reference is silent; the rounded-down split is taken, which
    // keeps a stable pod (only reachable with floor != 0).
    let mut best = options.first().copied().unwrap_or((floor, replicas));
    for &option in options.iter().skip(1) {
        if closer(distance(option), distance(best)) {
            best = option;
        }
    }
    let (canary, total) = best;
    (to_i32(canary), to_i32(total - canary))
}

/// Inputs of [`basic_canary_counts`].
#[derive(Clone, Copy, Debug, Default)]
pub struct BasicCanaryInput<'a> {
    /// `spec.replicas` of the Rollout.
    pub replicas: i32,
    /// The canary weight in effect (§4.3): 0 when aborted, `max_weight` after the last step.
    pub weight: i32,
    /// `maxTrafficWeight`, 100 for basic canary.
    pub max_weight: i32,
    /// Resolved `maxSurge` (see [`resolve_fenceposts`]).
    pub surge: i32,
    /// Resolved `maxUnavailable` (see [`resolve_fenceposts`]).
    pub unavailable: i32,
    /// The ReplicaSet of the current pod template; `None` before it is created (it is then
    /// counted as an RS with 0 replicas, and the returned count is the one it should get).
    pub new_rs: Option<RsReplicas>,
    /// The stable ReplicaSet. Pass `None` both when there is none (initial deploy) and when the
    /// stable RS *is* the new RS (fully promoted): both mean "no canary semantics" (§4.4 step B).
    pub stable_rs: Option<RsReplicas>,
    /// Every other RS (neither new nor stable), any order.
    pub other_rs: &'a [RsReplicas],
}

/// One ReplicaSet's current state, sanitized into `i64` with negatives read as 0.
#[derive(Clone, Copy, Debug, Default)]
struct Rs {
    spec: i64,
    available: i64,
}

impl From<RsReplicas> for Rs {
    fn from(rs: RsReplicas) -> Self {
        Rs {
            spec: non_negative(rs.spec),
            available: non_negative(rs.available),
        }
    }
}

/// §4.4 steps B–E (`CalculateReplicaCountsForBasicCanary`): the desired
/// `(new_rs_replicas, stable_rs_replicas)` for this reconcile.
///
/// The result may move both ReplicaSets, but the controller applies one RS change per reconcile
/// (stable first, then new, then the others; §4.4, §10.4) and calls this again on the observed
/// result; the figures only converge to the weight's split over several reconciles.
///
/// - Step B: no stable RS (or stable == new, passed as `stable_rs: None`): target is `(R, 0)`.
///   The surge limit below still applies (the reference gives only the target for this case).
/// - Step C: scale up stable, then new, towards their targets within `R + surge` total pods.
/// - Step D: while any other RS still has replicas, nothing is scaled down (the others drain first,
///   see [`scale_down_other_rs_for_canary`]).
/// - Step E: scale down within `maxUnavailable`: the stable when the canary grows, the canary when
///   it shrinks (abort, lower weight), then `adjustReplicaWithinLimits`.
///
/// Safety: when the current specs already total at most `R + surge`, so does the result; counts
/// are never negative.
pub fn basic_canary_counts(input: &BasicCanaryInput) -> (i32, i32) {
    let replicas = non_negative(input.replicas);
    let surge = non_negative(input.surge);
    let unavailable = non_negative(input.unavailable);
    let new_rs = Rs::from(input.new_rs.unwrap_or_default());
    let stable_rs = input.stable_rs.map(Rs::from);

    // Step B: without a (distinct) stable RS there is nothing to split.
    let (canary_target, stable_target) = match stable_rs {
        None => (replicas, 0),
        Some(_) => {
            let (canary, stable) = approximate_weighted_counts(
                input.replicas,
                input.weight,
                input.max_weight,
                input.surge,
            );
            (i64::from(canary), i64::from(stable))
        }
    };
    // An absent stable RS behaves as one with 0 replicas and a target of 0: it is never scaled.
    let stable_rs = stable_rs.unwrap_or_default();

    // Step C: scale up within maxSurge, the stable first, then the new RS.
    let max_total = replicas + surge;
    let other_total: i64 = input.other_rs.iter().map(|&rs| Rs::from(rs).spec).sum();
    let mut headroom = max_total - (other_total + new_rs.spec + stable_rs.spec);
    let mut stable_count = scale_up_within(stable_rs.spec, stable_target, &mut headroom);
    let mut new_count = scale_up_within(new_rs.spec, canary_target, &mut headroom);

    // Step D: older ReplicaSets are drained before the new or stable RS gives up any pod.
    if other_total > 0 {
        return (to_i32(new_count), to_i32(stable_count));
    }

    // Step E: scale down within maxUnavailable.
    let min_available = replicas - unavailable;
    // Growing the canary: the RS being shrunk (stable) is counted by its spec, since scaling it
    // down removes its unready pods first, and the RS being grown (new) by its available pods,
    // since only those serve. Shrinking the canary (abort, lower weight): the other way round.
    // Either way, removing `counted − min_available` pods keeps `min_available` available.
    let canary_increasing = canary_target >= new_rs.spec;
    let counted = pods_counted_for_scale_down(new_rs, !canary_increasing)
        + pods_counted_for_scale_down(stable_rs, canary_increasing);
    if counted <= min_available {
        return (to_i32(new_count), to_i32(stable_count));
    }
    let scale_down = counted - min_available;
    let limits = Limits {
        max_total,
        min_available,
    };
    if canary_increasing {
        stable_count = scale_down_toward(stable_rs.spec, stable_target, scale_down, stable_count);
        (stable_count, new_count) = limits.adjust(
            (stable_rs, stable_count), // drained
            (new_rs, new_count),       // adjusted
        );
    } else {
        new_count = scale_down_toward(new_rs.spec, canary_target, scale_down, new_count);
        (new_count, stable_count) = limits.adjust(
            (new_rs, new_count),       // drained
            (stable_rs, stable_count), // adjusted
        );
    }
    (to_i32(new_count), to_i32(stable_count))
}

/// Step C for one RS: raise `spec` towards `target` by at most `headroom`, consuming it.
fn scale_up_within(spec: i64, target: i64, headroom: &mut i64) -> i64 {
    if spec < target && *headroom > 0 {
        let scaled = target.min(spec + *headroom);
        *headroom -= scaled - spec;
        scaled
    } else {
        spec
    }
}

/// Step E's `repl(rs, ignoreAvailability)`: the pods of an RS counted as "could be scaled down".
/// A spec below the available count (pods still terminating) counts as the spec.
fn pods_counted_for_scale_down(rs: Rs, ignore_availability: bool) -> i64 {
    if rs.spec < rs.available || ignore_availability {
        rs.spec
    } else {
        rs.available
    }
}

/// Step E for the shrinking RS: `max(target, spec − scale_down)`. It only ever lowers a count:
/// an RS at or below its target keeps `current` (the value step C gave it). The reference writes
/// the bare formula; the guard is defensive (when step E runs while growing the canary, step C has
/// always been able to bring the stable up to its target), so it never changes a result today.
fn scale_down_toward(spec: i64, target: i64, scale_down: i64, current: i64) -> i64 {
    if spec > target {
        target.max(spec - scale_down)
    } else {
        current
    }
}

/// The two bounds a basic canary respects (§4.4, DESIGN §4 invariant 1).
struct Limits {
    /// `R + maxSurge`: most pods the new, stable and other RSs may ask for together.
    max_total: i64,
    /// `R − maxUnavailable`: fewest available pods while pods are becoming ready.
    min_available: i64,
}

impl Limits {
    /// `adjustReplicaWithinLimits` (§4.4), on `(current state, planned count)` pairs:
    /// 1. cut `adjust` by the amount the pair is over `max_total`;
    /// 2. give back the availability lost by that cut, as far as needed to stay at
    ///    `min_available`;
    /// 3. cut `drain` by whatever is still over `max_total`.
    ///
    /// Returns the planned `(drain, adjust)` counts.
    fn adjust(&self, drain: (Rs, i64), adjust: (Rs, i64)) -> (i64, i64) {
        let (drain_rs, drain_count) = drain;
        let (adjust_rs, adjust_count) = adjust;

        let over = (adjust_count + drain_count - self.max_total)
            .max(0)
            .min(adjust_count);
        let cut = adjust_count - over;

        // "Availability lost by that cut": the available pods of `adjust` that the cut count no
        // longer covers. This includes available pods already beyond its spec (a status that
        // lags a scale-down), so their loss is not ignored. When anything is given back, `adjust`
        // ends at most at `min_available` (≤ `max_total`), so step 3 can always restore the
        // surge limit.
        let lost = (adjust_rs.available - cut).max(0);
        let available_after = adjust_rs.available.min(cut) + drain_rs.available.min(drain_count);
        let shortfall = (self.min_available - available_after).max(0);
        let adjust_count = cut + lost.min(shortfall);

        let still_over = (adjust_count + drain_count - self.max_total).max(0);
        let drain_count = (drain_count - still_over).max(0);
        (drain_count, adjust_count)
    }
}

/// §4.4 "Other RSs" (`scaleDownOldReplicaSetsForCanary`, basic canary): the new `spec.replicas`
/// of each RS that is neither new nor stable, given in **descending revision order**; the result
/// is in the same order.
///
/// 1. Unhealthy ones are scaled down to their available count (their unready pods serve nothing,
///    and would otherwise block the rollout).
/// 2. `maxScaleDown = total_available_all_rs − (replicas − unavailable)`, where the total counts the
///    available pods of every RS (new and stable included), is spent in order: each RS gives up
///    to what is left, newest revision first. There is no delay in basic canary.
pub fn scale_down_other_rs_for_canary(
    replicas: i32,
    unavailable: i32,
    total_available_all_rs: i32,
    other_rs_desc_revision: &[RsReplicas],
) -> Vec<i32> {
    let min_available = non_negative(replicas) - non_negative(unavailable);
    let mut max_scale_down = non_negative(total_available_all_rs) - min_available;
    other_rs_desc_revision
        .iter()
        .map(|&rs| {
            let rs = Rs::from(rs);
            // Step 1: drop the unready pods.
            let healthy = rs.spec.min(rs.available);
            // Step 2: then available pods, as far as maxUnavailable allows.
            let removed = healthy.min(max_scale_down.max(0));
            max_scale_down -= removed;
            to_i32(healthy - removed)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Canary with trafficRouting, §4.5
// ---------------------------------------------------------------------------------------------

/// A `setCanaryScale` step in effect (§4.3): an explicit canary size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CanaryScale {
    /// `setCanaryScale.replicas`: this many canary pods, as is.
    Replicas(i32),
    /// `setCanaryScale.weight`: the canary is sized for this weight instead of the traffic weight.
    Weight(i32),
}

/// Inputs of [`traffic_routed_counts`].
#[derive(Clone, Copy, Debug, Default)]
pub struct TrafficRoutedInput {
    /// `spec.replicas` of the Rollout.
    pub replicas: i32,
    /// `trafficRouting.maxTrafficWeight` (default 100).
    pub max_weight: i32,
    /// The weight of the current `setWeight` (§4.3; 0 when aborted, or the dynamicStableScale
    /// step-down weight).
    pub desired_weight: i32,
    /// The `setCanaryScale` in effect, already resolved by the caller per §4.3 (`None` when
    /// cancelled by `matchTrafficWeight: true`, or ignored while aborted).
    pub canary_scale: Option<CanaryScale>,
    /// `canary.minPodsPerReplicaSet`.
    pub min_pods_per_rs: Option<i32>,
    /// `canary.dynamicStableScale`.
    pub dynamic_stable_scale: bool,
    /// `status.abort`.
    pub aborted: bool,
    /// Weights recorded in `status.canary.weights` by the previous reconcile, as
    /// `(canary, stable)`, if any. `None` is read as "all traffic still on the stable", `(0, max)`.
    pub current_weights: Option<(i32, i32)>,
}

/// §4.5 (`CalculateReplicaCountsForTrafficRoutedCanary`): `(canary, stable)` for a canary with
/// trafficRouting. There is no maxSurge limit here: traffic, not pod counts, is what is shifted.
///
/// - canary: `setCanaryScale.replicas` as is; otherwise `ceil(w·R/M)` for the `setCanaryScale`
///   weight or else the desired weight, raised to `minPodsPerReplicaSet` (capped at R) when non-zero.
/// - stable: R, unless `dynamicStableScale`: then
///   `max(ceil((M−W)·R/M), ceil(currentStableWeight·R/M))` (the stable trails the weight actually
///   applied, DESIGN §4 invariant 3), and when aborted the canary keeps
///   `ceil(currentCanaryWeight·R/M)` pods while traffic steps back.
pub fn traffic_routed_counts(input: &TrafficRoutedInput) -> (i32, i32) {
    let replicas = non_negative(input.replicas);
    let max_weight = input.max_weight.max(1);
    let pods_for = |weight: i32| weight_to_replicas(replicas, weight, max_weight);
    let at_least_min_pods = |count: i64| with_min_pods(count, input.min_pods_per_rs, replicas);

    let mut canary = match input.canary_scale {
        Some(CanaryScale::Replicas(count)) => non_negative(count),
        Some(CanaryScale::Weight(weight)) => at_least_min_pods(pods_for(weight)),
        None => at_least_min_pods(pods_for(input.desired_weight)),
    };
    if !input.dynamic_stable_scale {
        return (to_i32(canary), to_i32(replicas));
    }

    let (current_canary_weight, current_stable_weight) =
        input.current_weights.unwrap_or((0, max_weight));
    // The stable keeps enough pods for the larger of the share it is about to get and the share
    // the router gives it right now (the weight moves only after the pods are there, §4.19).
    let stable_weight = max_weight.saturating_sub(input.desired_weight.clamp(0, max_weight));
    let stable = at_least_min_pods(pods_for(stable_weight).max(pods_for(current_stable_weight)));
    if input.aborted {
        // While traffic steps back down, the canary keeps enough pods for the weight it still has.
        canary = canary.max(pods_for(current_canary_weight));
    }
    (to_i32(canary), to_i32(stable))
}

/// `ceil(weight·replicas/max_weight)` with the weight clamped into `0..=max_weight`
/// (`max_weight >= 1`), so the result is within `0..=replicas`.
fn weight_to_replicas(replicas: i64, weight: i32, max_weight: i32) -> i64 {
    let weight = i64::from(weight.clamp(0, max_weight));
    ceil_div(replicas * weight, i64::from(max_weight))
}

/// `minPodsPerReplicaSet` (§4.5): a non-zero count is raised to the minimum, capped at R.
/// The reference states it for the canary; it is applied to the dynamically scaled stable too, as
/// the field's name ("per ReplicaSet") says, which can only keep more stable pods.
fn with_min_pods(count: i64, min_pods: Option<i32>, replicas: i64) -> i64 {
    match min_pods {
        Some(min_pods) if count > 0 => count.max(non_negative(min_pods).min(replicas)),
        _ => count,
    }
}

// ---------------------------------------------------------------------------------------------
// Small arithmetic helpers
// ---------------------------------------------------------------------------------------------

fn non_negative(value: i32) -> i64 {
    i64::from(value.max(0))
}

/// Into `0..=i32::MAX`.
fn to_i32(value: i64) -> i32 {
    i32::try_from(value.clamp(0, i64::from(i32::MAX))).unwrap_or(i32::MAX)
}

/// `ceil(numerator / denominator)` for `numerator >= 0`, `denominator > 0`.
fn ceil_div(numerator: i64, denominator: i64) -> i64 {
    (numerator + denominator - 1) / denominator
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rs(spec: i32, available: i32) -> RsReplicas {
        RsReplicas { spec, available }
    }

    fn percent(text: &str) -> IntOrString {
        IntOrString::String(text.to_string())
    }

    // -----------------------------------------------------------------------------------------
    // A tiny cluster: the ReplicaSets of one basic-canary Rollout, reconciled the way the
    // controller does it (one RS change per reconcile: stable, then new, then the others; §4.4).
    // -----------------------------------------------------------------------------------------

    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Change {
        Stable { from: i32, to: i32 },
        New { from: i32, to: i32 },
        Others { from: Vec<i32>, to: Vec<i32> },
    }

    #[derive(Clone, Debug)]
    struct World {
        replicas: i32,
        weight: i32,
        surge: i32,
        unavailable: i32,
        new: RsReplicas,
        stable: Option<RsReplicas>,
        /// descending revision order
        others: Vec<RsReplicas>,
    }

    impl World {
        /// R replicas with the given maxSurge / maxUnavailable, everything on a settled stable.
        fn settled_stable(replicas: i32, max_surge: &str, max_unavailable: &str) -> World {
            let mut world = World {
                replicas,
                weight: 0,
                surge: 0,
                unavailable: 0,
                new: rs(0, 0),
                stable: Some(rs(replicas, replicas)),
                others: Vec::new(),
            };
            world.resize(replicas, max_surge, max_unavailable);
            world
        }

        /// `kubectl scale`: a new spec.replicas, with the fenceposts resolved again.
        fn resize(&mut self, replicas: i32, max_surge: &str, max_unavailable: &str) {
            let (surge, unavailable) =
                resolve_fenceposts(&percent(max_surge), &percent(max_unavailable), replicas)
                    .expect("valid fenceposts");
            self.replicas = replicas;
            self.surge = surge;
            self.unavailable = unavailable;
        }

        fn desired(&self) -> (i32, i32) {
            basic_canary_counts(&BasicCanaryInput {
                replicas: self.replicas,
                weight: self.weight,
                max_weight: 100,
                surge: self.surge,
                unavailable: self.unavailable,
                new_rs: Some(self.new),
                stable_rs: self.stable,
                other_rs: &self.others,
            })
        }

        fn all_rs(&self) -> impl Iterator<Item = RsReplicas> + '_ {
            std::iter::once(self.new)
                .chain(self.stable)
                .chain(self.others.iter().copied())
        }

        fn total_spec(&self) -> i32 {
            self.all_rs().map(|rs| rs.spec).sum()
        }

        fn total_available(&self) -> i32 {
            self.all_rs().map(|rs| rs.available).sum()
        }

        /// One reconcile: apply the first needed change, stable first, then new, then others.
        /// Scaling down removes unready pods first (as the ReplicaSet controller does).
        fn reconcile(&mut self) -> Option<Change> {
            let (new_count, stable_count) = self.desired();
            if let Some(stable) = self.stable.as_mut()
                && stable.spec != stable_count
            {
                let from = stable.spec;
                scale(stable, stable_count);
                return Some(Change::Stable {
                    from,
                    to: stable_count,
                });
            }
            if self.new.spec != new_count {
                let from = self.new.spec;
                scale(&mut self.new, new_count);
                return Some(Change::New {
                    from,
                    to: new_count,
                });
            }
            let others = scale_down_other_rs_for_canary(
                self.replicas,
                self.unavailable,
                self.total_available(),
                &self.others,
            );
            let from: Vec<i32> = self.others.iter().map(|rs| rs.spec).collect();
            if others != from {
                for (rs, &count) in self.others.iter_mut().zip(&others) {
                    scale(rs, count);
                }
                return Some(Change::Others { from, to: others });
            }
            None
        }

        /// Every pod that exists becomes ready.
        fn pods_become_ready(&mut self) {
            self.some_pods_become_ready(u8::MAX);
        }

        /// The pods of some ReplicaSets become ready: bit 0 new, bit 1 stable, bit 2 others.
        fn some_pods_become_ready(&mut self, which: u8) {
            let ready = |rs: &mut RsReplicas| rs.available = rs.spec;
            if which & 1 != 0 {
                ready(&mut self.new);
            }
            if which & 2 != 0 {
                self.stable.as_mut().map(ready);
            }
            if which & 4 != 0 {
                self.others.iter_mut().for_each(ready);
            }
        }

        /// Reconcile (pods becoming ready in between) until nothing changes and every pod is ready,
        /// checking the basic canary safety invariants (DESIGN §4.1) at every step. Returns the
        /// changes made.
        fn settle(&mut self) -> Vec<Change> {
            self.settle_with_readiness(&[])
        }

        /// [`World::settle`], where between the first reconciles only the ReplicaSets named by
        /// `readiness` (see [`World::some_pods_become_ready`]) get their pods ready.
        fn settle_with_readiness(&mut self, readiness: &[u8]) -> Vec<Change> {
            let mut changes = Vec::new();
            for tick in 0..200 {
                let (total_before, available_before) = (self.total_spec(), self.total_available());
                let Some(change) = self.reconcile() else {
                    if self.all_rs().all(|rs| rs.available == rs.spec) {
                        return changes;
                    }
                    // Nothing to do until the pending pods are ready.
                    self.pods_become_ready();
                    continue;
                };
                let max_total = self.replicas + self.surge;
                let min_available = self.replicas - self.unavailable;
                assert!(
                    self.total_spec() <= max_total.max(total_before),
                    "{change:?} took the total to {} pods, over R+surge={max_total}: {self:?}",
                    self.total_spec()
                );
                assert!(
                    self.total_available() >= min_available.min(available_before),
                    "{change:?} took availability to {}, under R-unavailable={min_available}: {self:?}",
                    self.total_available()
                );
                changes.push(change);
                self.some_pods_become_ready(readiness.get(tick).copied().unwrap_or(u8::MAX));
            }
            panic!("no fixed point after 200 reconciles: {self:?}");
        }

        fn counts(&self) -> (i32, i32) {
            (self.new.spec, self.stable.map_or(0, |rs| rs.spec))
        }
    }

    fn scale(rs: &mut RsReplicas, spec: i32) {
        rs.spec = spec;
        rs.available = rs.available.min(spec);
    }

    // -----------------------------------------------------------------------------------------
    // Fenceposts (§0, §4.4)
    // -----------------------------------------------------------------------------------------

    #[test]
    fn percent_string_without_sign_is_read_as_a_percent() {
        assert_eq!(resolve_max_surge(&percent("25"), 5), Ok(2)); // ceil(1.25)
        assert_eq!(resolve_max_unavailable(&percent("25"), 5), Ok(1)); // floor(1.25)
    }

    #[test]
    fn percent_string_with_sign_rounds_surge_up_and_unavailable_down() {
        assert_eq!(resolve_max_surge(&percent("25%"), 5), Ok(2));
        assert_eq!(resolve_max_unavailable(&percent("25%"), 5), Ok(1));
        assert_eq!(resolve_max_surge(&percent("25%"), 8), Ok(2));
        assert_eq!(resolve_max_unavailable(&percent("25%"), 8), Ok(2));
    }

    #[test]
    fn integer_fenceposts_are_taken_as_they_are() {
        assert_eq!(resolve_max_surge(&IntOrString::Int(2), 5), Ok(2));
        assert_eq!(resolve_max_unavailable(&IntOrString::Int(2), 5), Ok(2));
        assert_eq!(resolve_max_surge(&IntOrString::Int(9), 5), Ok(9));
    }

    #[test]
    fn zero_percent_string_resolves_to_zero() {
        assert_eq!(resolve_max_surge(&percent("0"), 5), Ok(0));
        assert_eq!(resolve_max_unavailable(&percent("0"), 5), Ok(0));
    }

    #[test]
    fn non_numeric_fencepost_is_an_error_naming_the_value() {
        for bad in ["abc", "25.5%", "%", "", " 25", "25%%"] {
            let error = resolve_max_surge(&percent(bad), 5).expect_err(bad);
            assert!(error.contains(&format!("{bad:?}")), "{error}");
            assert!(error.contains("maxSurge"), "{error}");
            let error = resolve_max_unavailable(&percent(bad), 5).expect_err(bad);
            assert!(error.contains("maxUnavailable"), "{error}");
        }
    }

    #[test]
    fn negative_fencepost_is_an_error() {
        assert!(resolve_max_surge(&IntOrString::Int(-1), 5).is_err());
        assert!(resolve_max_unavailable(&percent("-25%"), 5).is_err());
    }

    #[test]
    fn default_fenceposts_for_five_replicas_are_surge_two_unavailable_one() {
        assert_eq!(
            resolve_fenceposts(&percent("25"), &percent("25"), 5),
            Ok((2, 1))
        );
    }

    #[test]
    fn fenceposts_both_zero_allow_one_unavailable() {
        assert_eq!(
            resolve_fenceposts(&percent("0"), &IntOrString::Int(0), 5),
            Ok((0, 1))
        );
        // 25% of 1 is 0 both ways.
        assert_eq!(
            resolve_fenceposts(&percent("0%"), &percent("25%"), 3),
            Ok((0, 1))
        );
    }

    #[test]
    fn fenceposts_cap_unavailable_at_replicas() {
        assert_eq!(
            resolve_fenceposts(&IntOrString::Int(1), &IntOrString::Int(9), 3),
            Ok((1, 3))
        );
        assert_eq!(
            resolve_fenceposts(&percent("0"), &percent("300%"), 3),
            Ok((0, 3))
        );
    }

    #[test]
    fn fenceposts_with_zero_or_negative_replicas_allow_no_unavailable() {
        assert_eq!(
            resolve_fenceposts(&percent("0"), &percent("0"), 0),
            Ok((0, 0))
        );
        assert_eq!(
            resolve_fenceposts(&percent("25%"), &IntOrString::Int(3), 0),
            Ok((0, 0))
        );
        assert_eq!(
            resolve_fenceposts(&percent("25%"), &percent("25%"), -4),
            Ok((0, 0))
        );
    }

    #[test]
    fn huge_percentages_saturate_instead_of_overflowing() {
        assert_eq!(
            resolve_max_surge(&percent("2147483647%"), i32::MAX),
            Ok(i32::MAX)
        );
        assert_eq!(
            resolve_max_unavailable(&percent("100%"), i32::MAX),
            Ok(i32::MAX)
        );
    }

    // -----------------------------------------------------------------------------------------
    // Step A: target split (§4.4 vectors from TestApproximateWeightedNewStableReplicaCounts)
    // -----------------------------------------------------------------------------------------

    #[test]
    fn approximate_weighted_counts_match_the_reference_vectors() {
        // (replicas, weight, surge) -> (canary, stable), max weight 100
        let vectors = [
            ((1, 1, 0), (0, 1)),
            ((1, 50, 0), (1, 0)),
            ((1, 1, 1), (1, 1)),
            ((2, 1, 0), (1, 1)),
            ((2, 99, 1), (2, 1)),
            ((3, 10, 0), (1, 2)),
            ((3, 49, 1), (2, 2)),
            ((10, 14, 0), (1, 9)),
            ((10, 15, 0), (2, 8)),
            ((10, 1, 1), (1, 10)),
            ((10, 18, 1), (2, 9)),
            ((10, 20, 1), (2, 8)),
            ((10, 24, 1), (3, 8)),
            ((10, 99, 1), (10, 1)),
        ];
        for ((replicas, weight, surge), expected) in vectors {
            assert_eq!(
                approximate_weighted_counts(replicas, weight, 100, surge),
                expected,
                "R={replicas} W={weight} surge={surge}"
            );
        }
    }

    #[test]
    fn approximate_weighted_counts_of_zero_replicas_is_empty() {
        assert_eq!(approximate_weighted_counts(0, 50, 100, 1), (0, 0));
        assert_eq!(approximate_weighted_counts(-3, 50, 100, 1), (0, 0));
    }

    #[test]
    fn full_weight_is_all_canary_and_zero_weight_all_stable() {
        assert_eq!(approximate_weighted_counts(5, 100, 100, 2), (5, 0));
        assert_eq!(approximate_weighted_counts(5, 0, 100, 2), (0, 5));
    }

    #[test]
    fn weight_between_bounds_gives_the_canary_a_pod() {
        for replicas in 2..20 {
            for weight in 1..100 {
                let (canary, stable) = approximate_weighted_counts(replicas, weight, 100, 0);
                assert!(canary >= 1 && stable >= 1, "R={replicas} W={weight}");
                assert_eq!(canary + stable, replicas, "R={replicas} W={weight}");
            }
        }
    }

    #[test]
    fn tie_with_all_pods_on_canary_and_no_surge_keeps_a_stable_pod() {
        // R·W/M = R − ½ without surge: (R, 0) may not empty the stable and the rounded-down split
        // is a tie, so the reference offers no option at all; the rounded-down split is taken.
        for (replicas, weight, expected) in [(2, 75, (1, 1)), (5, 90, (4, 1)), (10, 95, (9, 1))] {
            assert_eq!(
                approximate_weighted_counts(replicas, weight, 100, 0),
                expected
            );
        }
    }

    #[test]
    fn weight_outside_bounds_is_clamped() {
        assert_eq!(approximate_weighted_counts(4, 250, 100, 1), (4, 0));
        assert_eq!(approximate_weighted_counts(4, -5, 100, 1), (0, 4));
        assert_eq!(approximate_weighted_counts(4, 1, 0, 1), (4, 0)); // max weight read as 1
    }

    // -----------------------------------------------------------------------------------------
    // Basic canary steps B-E (§4.4)
    // -----------------------------------------------------------------------------------------

    #[test]
    fn worked_example_scales_stable_down_first_then_new_up() {
        // R=5, W=20, maxSurge/maxUnavailable "25" -> surge 2, unavailable 1.
        let mut world = World::settled_stable(5, "25", "25");
        assert_eq!((world.surge, world.unavailable), (2, 1));
        world.weight = 20;
        assert_eq!(approximate_weighted_counts(5, 20, 100, 2), (1, 4));

        // Reconcile 1: the stable goes 5 -> 4 (the new RS waits for the next reconcile).
        assert_eq!(world.desired(), (1, 4));
        assert_eq!(world.reconcile(), Some(Change::Stable { from: 5, to: 4 }));
        assert_eq!(world.stable, Some(rs(4, 4)));
        assert_eq!(world.new, rs(0, 0));
        assert_eq!(world.total_available(), 4, "R - maxUnavailable");

        // Reconcile 2: the new RS goes 0 -> 1.
        assert_eq!(world.reconcile(), Some(Change::New { from: 0, to: 1 }));
        world.pods_become_ready();

        // Reconcile 3: at the desired counts, nothing to do.
        assert_eq!(world.reconcile(), None);
        assert_eq!(world.new, rs(1, 1));
        assert_eq!(world.stable, Some(rs(4, 4)));
    }

    #[test]
    fn worked_example_settles_at_one_canary_four_stable() {
        let mut world = World::settled_stable(5, "25", "25");
        world.weight = 20;
        let changes = world.settle();
        assert_eq!(
            changes,
            [
                Change::Stable { from: 5, to: 4 },
                Change::New { from: 0, to: 1 }
            ]
        );
        assert_eq!(world.counts(), (1, 4));
    }

    /// A rollout settled at 25% with 5 replicas (1 canary / 4 stable).
    fn paused_at_25_percent_with_5_replicas() -> World {
        let mut world = World::settled_stable(5, "25%", "25%");
        world.weight = 25;
        world.settle();
        assert_eq!(world.counts(), (1, 4));
        world
    }

    #[test]
    fn scaling_up_while_paused_keeps_the_weight_split() {
        // e2e TestRolloutScalingWhenPaused: R=8 at 25% -> 2 canary / 6 stable.
        let mut world = paused_at_25_percent_with_5_replicas();
        world.resize(8, "25%", "25%");
        assert_eq!(world.desired(), (2, 6));
        world.settle();
        assert_eq!(world.counts(), (2, 6));
    }

    #[test]
    fn scaling_down_while_paused_keeps_the_weight_split() {
        // e2e TestRolloutScalingWhenPaused: then R=4 -> 1 canary / 3 stable.
        let mut world = paused_at_25_percent_with_5_replicas();
        world.resize(8, "25%", "25%");
        world.settle();
        world.resize(4, "25%", "25%");
        world.settle();
        assert_eq!(world.counts(), (1, 3));
        assert_eq!(world.total_available(), 4);
    }

    #[test]
    fn abort_during_basic_canary_scales_canary_down_within_max_unavailable() {
        // §4.9: weight 0 -> the new RS scales down and the stable back up (decreasing branch).
        let mut world = World::settled_stable(5, "25", "25");
        world.new = rs(1, 1);
        world.stable = Some(rs(4, 4));
        world.weight = 0;
        assert_eq!(world.desired(), (0, 5));

        let changes = world.settle(); // asserts availability >= R - maxUnavailable throughout
        assert_eq!(
            changes,
            [
                Change::Stable { from: 4, to: 5 },
                Change::New { from: 1, to: 0 }
            ]
        );
        assert_eq!(world.counts(), (0, 5));
    }

    #[test]
    fn abort_keeps_canary_pod_while_the_stable_is_not_ready() {
        // Stable back at 5 but only 3 available: removing the canary pod would leave 3 < 4.
        let input = BasicCanaryInput {
            replicas: 5,
            weight: 0,
            max_weight: 100,
            surge: 2,
            unavailable: 1,
            new_rs: Some(rs(1, 1)),
            stable_rs: Some(rs(5, 3)),
            other_rs: &[],
        };
        assert_eq!(basic_canary_counts(&input), (1, 5));
        // One more stable pod ready: the canary may go.
        let input = BasicCanaryInput {
            stable_rs: Some(rs(5, 4)),
            ..input
        };
        assert_eq!(basic_canary_counts(&input), (0, 5));
    }

    #[test]
    fn abort_with_canary_beyond_surge_scales_canary_down_and_stable_up() {
        // R=10 at 50% (5/5, surge 3, unavailable 2), aborted.
        let mut world = World::settled_stable(10, "25%", "25%");
        world.new = rs(5, 5);
        world.stable = Some(rs(5, 5));
        world.weight = 0;
        world.settle();
        assert_eq!(world.counts(), (0, 10));
    }

    #[test]
    fn reducing_the_weight_honors_max_unavailable() {
        // e2e TestReduceWeightAndHonorMaxUnavailable, in spirit: 50% -> 20% on 10 replicas.
        let mut world = World::settled_stable(10, "25%", "25%");
        world.weight = 50;
        world.settle();
        assert_eq!(world.counts(), (5, 5));
        world.weight = 20;
        world.settle(); // asserts availability >= 8 and at most 13 pods throughout
        assert_eq!(world.counts(), (2, 8));
    }

    #[test]
    fn stable_drains_to_zero_when_the_weight_reaches_full() {
        // §4.4: after the last step the weight is 100: canary R, stable 0, before promotion.
        let mut world = World::settled_stable(5, "25%", "25%");
        world.weight = 20;
        world.settle();
        world.weight = 100;
        world.settle();
        assert_eq!(world.counts(), (5, 0));
    }

    #[test]
    fn initial_deploy_without_stable_scales_new_rs_to_replicas() {
        // §4.4 step B: no stable RS -> canary target R, stable 0, whatever the weight.
        let input = BasicCanaryInput {
            replicas: 5,
            weight: 20,
            max_weight: 100,
            surge: 2,
            unavailable: 1,
            new_rs: Some(rs(0, 0)),
            stable_rs: None,
            other_rs: &[],
        };
        assert_eq!(basic_canary_counts(&input), (5, 0));
    }

    #[test]
    fn missing_new_rs_is_counted_as_empty() {
        let input = BasicCanaryInput {
            replicas: 5,
            weight: 20,
            max_weight: 100,
            surge: 2,
            unavailable: 1,
            new_rs: None,
            stable_rs: Some(rs(5, 5)),
            other_rs: &[],
        };
        assert_eq!(basic_canary_counts(&input), (1, 4));
    }

    #[test]
    fn fully_promoted_rollout_scaled_down_drops_to_replicas() {
        // stable == new is passed as stable_rs: None.
        let input = BasicCanaryInput {
            replicas: 5,
            weight: 100,
            max_weight: 100,
            surge: 2,
            unavailable: 1,
            new_rs: Some(rs(10, 10)),
            stable_rs: None,
            other_rs: &[],
        };
        assert_eq!(basic_canary_counts(&input), (5, 0));
    }

    #[test]
    fn new_rs_scale_up_is_limited_by_max_surge() {
        // R=10 at 50%, no unavailability allowed: only 1 surge pod may be added at a time.
        let input = BasicCanaryInput {
            replicas: 10,
            weight: 50,
            max_weight: 100,
            surge: 1,
            unavailable: 0,
            new_rs: Some(rs(0, 0)),
            stable_rs: Some(rs(10, 10)),
            other_rs: &[],
        };
        assert_eq!(basic_canary_counts(&input), (1, 10));
        let input = BasicCanaryInput {
            new_rs: Some(rs(1, 1)),
            ..input
        };
        assert_eq!(basic_canary_counts(&input), (1, 9));
    }

    #[test]
    fn scale_up_headroom_goes_to_the_stable_first() {
        // R scaled 8 -> 10 at 50% while an older RS still holds 2 pods: one pod of headroom
        // (R + surge = 11, 10 in use) and both RSs below their 5/5 targets.
        let input = BasicCanaryInput {
            replicas: 10,
            weight: 50,
            max_weight: 100,
            surge: 1,
            unavailable: 0,
            new_rs: Some(rs(4, 4)),
            stable_rs: Some(rs(4, 4)),
            other_rs: &[rs(2, 2)],
        };
        assert_eq!(basic_canary_counts(&input), (4, 5));
    }

    #[test]
    fn stable_is_not_scaled_down_while_the_canary_is_not_ready() {
        // The stable already gave one pod (4) and the canary pod is not ready: no further cut.
        let input = BasicCanaryInput {
            replicas: 5,
            weight: 40,
            max_weight: 100,
            surge: 2,
            unavailable: 1,
            new_rs: Some(rs(2, 0)),
            stable_rs: Some(rs(4, 4)),
            other_rs: &[],
        };
        assert_eq!(basic_canary_counts(&input), (2, 4));
    }

    #[test]
    fn older_replica_sets_drain_before_new_or_stable_scale_down() {
        // §4.4 step D / §4.13: an intermediate revision (other RS) still has 2 pods.
        let mut world = World::settled_stable(5, "25", "25");
        world.others = vec![rs(2, 2)];
        world.weight = 20;
        // No headroom for the canary and no stable scale-down while the other RS has pods.
        assert_eq!(world.desired(), (0, 5));
        assert_eq!(
            world.reconcile(),
            Some(Change::Others {
                from: vec![2],
                to: vec![0]
            })
        );
        world.settle();
        assert_eq!(world.counts(), (1, 4));
        assert_eq!(world.others, [rs(0, 0)]);
    }

    #[test]
    fn rollout_scaled_down_mid_canary_keeps_min_available_on_the_stable() {
        // R 6 -> 4 at 50% (targets 2/2), surge 0 / unavailable 1: at most 4 pods, at least 3
        // available. The canary's 3 pods are not ready, so cutting the stable to 2 would leave 2
        // available: adjustReplicaWithinLimits gives one back to the stable and takes it from the
        // canary instead.
        let input = BasicCanaryInput {
            replicas: 4,
            weight: 50,
            max_weight: 100,
            surge: 0,
            unavailable: 1,
            new_rs: Some(rs(3, 0)),
            stable_rs: Some(rs(6, 6)),
            other_rs: &[],
        };
        assert_eq!(basic_canary_counts(&input), (1, 3));
    }

    #[test]
    fn abort_with_lagging_stable_status_keeps_enough_stable_pods() {
        // The stable was being scaled 4 -> 2 when the abort came; its status still shows 4
        // available, and only 1 of the canary's 4 pods is ready. Keeping the stable at 2 would
        // leave 2 + 1 = 3 available < R - maxUnavailable = 4, so one stable pod is kept.
        let input = BasicCanaryInput {
            replicas: 5,
            weight: 0,
            max_weight: 100,
            surge: 1,
            unavailable: 1,
            new_rs: Some(rs(4, 1)),
            stable_rs: Some(rs(2, 4)),
            other_rs: &[],
        };
        assert_eq!(basic_canary_counts(&input), (2, 3));
    }

    // -----------------------------------------------------------------------------------------
    // Other RSs (§4.4 "Other RSs")
    // -----------------------------------------------------------------------------------------

    #[test]
    fn unhealthy_other_rs_scale_down_to_their_available_count_first() {
        // Availability is exactly at R - unavailable: only unready pods may go.
        assert_eq!(
            scale_down_other_rs_for_canary(5, 1, 4, &[rs(3, 1), rs(2, 2)]),
            [1, 2]
        );
    }

    #[test]
    fn other_rs_scale_down_is_spent_newest_revision_first() {
        // 7 available, 4 needed: 3 pods may go, newest revision first.
        assert_eq!(
            scale_down_other_rs_for_canary(5, 1, 7, &[rs(2, 2), rs(2, 2)]),
            [0, 1]
        );
    }

    #[test]
    fn other_rs_keep_their_pods_without_availability_headroom() {
        assert_eq!(scale_down_other_rs_for_canary(5, 1, 3, &[rs(2, 2)]), [2]);
        assert!(scale_down_other_rs_for_canary(5, 1, 9, &[]).is_empty());
    }

    // -----------------------------------------------------------------------------------------
    // trafficRouting (§4.5)
    // -----------------------------------------------------------------------------------------

    fn traffic_routed(replicas: i32, desired_weight: i32) -> TrafficRoutedInput {
        TrafficRoutedInput {
            replicas,
            max_weight: 100,
            desired_weight,
            ..TrafficRoutedInput::default()
        }
    }

    #[test]
    fn traffic_routed_canary_rounds_the_weight_share_up_and_stable_stays_full() {
        assert_eq!(traffic_routed_counts(&traffic_routed(5, 30)), (2, 5));
        assert_eq!(traffic_routed_counts(&traffic_routed(5, 0)), (0, 5));
        assert_eq!(traffic_routed_counts(&traffic_routed(5, 100)), (5, 5));
    }

    #[test]
    fn traffic_routed_canary_ignores_max_surge() {
        // 10 replicas at 90%: 9 canary pods next to 10 stable ones.
        assert_eq!(traffic_routed_counts(&traffic_routed(10, 90)), (9, 10));
    }

    #[test]
    fn min_pods_per_replica_set_raises_a_non_zero_canary_capped_at_replicas() {
        let input = TrafficRoutedInput {
            min_pods_per_rs: Some(3),
            ..traffic_routed(10, 5)
        };
        assert_eq!(traffic_routed_counts(&input), (3, 10));
        let input = TrafficRoutedInput {
            desired_weight: 0,
            ..input
        };
        assert_eq!(
            traffic_routed_counts(&input),
            (0, 10),
            "a zero canary stays zero"
        );
        let input = TrafficRoutedInput {
            min_pods_per_rs: Some(50),
            desired_weight: 5,
            ..input
        };
        assert_eq!(traffic_routed_counts(&input), (10, 10));
    }

    #[test]
    fn set_canary_scale_replicas_are_taken_as_they_are() {
        let input = TrafficRoutedInput {
            canary_scale: Some(CanaryScale::Replicas(2)),
            min_pods_per_rs: Some(3),
            ..traffic_routed(5, 80)
        };
        assert_eq!(traffic_routed_counts(&input), (2, 5));
    }

    #[test]
    fn set_canary_scale_weight_sizes_the_canary_instead_of_the_traffic_weight() {
        let input = TrafficRoutedInput {
            canary_scale: Some(CanaryScale::Weight(50)),
            ..traffic_routed(5, 10)
        };
        assert_eq!(traffic_routed_counts(&input), (3, 5));
    }

    #[test]
    fn dynamic_stable_scale_trails_the_weight_actually_applied() {
        let input = TrafficRoutedInput {
            dynamic_stable_scale: true,
            current_weights: Some((10, 90)),
            ..traffic_routed(10, 30)
        };
        // The router still sends 90% to the stable: it keeps 9 pods, not 7.
        assert_eq!(traffic_routed_counts(&input), (3, 9));
        let input = TrafficRoutedInput {
            current_weights: Some((30, 70)),
            ..input
        };
        assert_eq!(traffic_routed_counts(&input), (3, 7));
    }

    #[test]
    fn dynamic_stable_scale_without_recorded_weights_keeps_the_stable_full() {
        let input = TrafficRoutedInput {
            dynamic_stable_scale: true,
            current_weights: None,
            ..traffic_routed(10, 30)
        };
        assert_eq!(traffic_routed_counts(&input), (3, 10));
    }

    #[test]
    fn dynamic_stable_scale_abort_keeps_canary_pods_for_the_weight_it_still_carries() {
        let input = TrafficRoutedInput {
            dynamic_stable_scale: true,
            aborted: true,
            current_weights: Some((60, 40)),
            ..traffic_routed(10, 0)
        };
        assert_eq!(traffic_routed_counts(&input), (6, 10));
    }

    #[test]
    fn abort_without_dynamic_stable_scale_sizes_the_canary_for_weight_zero() {
        // The canary RS is kept by abortScaleDownDelaySeconds in the planner, not here.
        let input = TrafficRoutedInput {
            aborted: true,
            current_weights: Some((60, 40)),
            ..traffic_routed(10, 0)
        };
        assert_eq!(traffic_routed_counts(&input), (0, 10));
    }

    #[test]
    fn dynamic_stable_scale_respects_min_pods_for_the_stable() {
        let input = TrafficRoutedInput {
            dynamic_stable_scale: true,
            min_pods_per_rs: Some(2),
            current_weights: Some((95, 5)),
            ..traffic_routed(10, 95)
        };
        assert_eq!(traffic_routed_counts(&input), (10, 2));
    }

    // -----------------------------------------------------------------------------------------
    // Properties
    // -----------------------------------------------------------------------------------------

    fn rs_strategy() -> impl Strategy<Value = RsReplicas> {
        (0..60i32, 0..60i32).prop_map(|(spec, available)| rs(spec, available))
    }

    proptest! {
        #[test]
        fn basic_canary_counts_are_non_negative_and_stay_within_surge(
            replicas in 0..50i32,
            weight in 0..=100i32,
            surge in 0..20i32,
            unavailable in 0..20i32,
            new_rs in proptest::option::of(rs_strategy()),
            stable_rs in proptest::option::of(rs_strategy()),
            other_rs in proptest::collection::vec(rs_strategy(), 0..4),
        ) {
            let input = BasicCanaryInput {
                replicas, weight, max_weight: 100, surge, unavailable,
                new_rs, stable_rs, other_rs: &other_rs,
            };
            let (new_count, stable_count) = basic_canary_counts(&input);
            prop_assert!(new_count >= 0 && stable_count >= 0);
            if stable_rs.is_none() {
                prop_assert_eq!(stable_count, 0);
            }

            let others: i32 = other_rs.iter().map(|rs| rs.spec).sum();
            let current = others + new_rs.map_or(0, |rs| rs.spec) + stable_rs.map_or(0, |rs| rs.spec);
            if current <= replicas + surge {
                prop_assert!(
                    others + new_count + stable_count <= replicas + surge,
                    "asked for {} + {} + {} > {} + {}",
                    new_count, stable_count, others, replicas, surge
                );
            }
        }

        #[test]
        fn basic_canary_walks_any_weight_change_safely_to_its_split(
            replicas in 1..30i32,
            max_surge in 0..=100i32,
            max_unavailable in 0..=100i32,
            first_weight in 0..=100i32,
            second_weight in 0..=100i32,
            template_changed in any::<bool>(),
        ) {
            let (surge, unavailable) = (format!("{max_surge}%"), format!("{max_unavailable}%"));
            let mut world = World::settled_stable(replicas, &surge, &unavailable);
            world.weight = first_weight;
            world.settle();
            prop_assert_eq!(
                world.counts(),
                approximate_weighted_counts(replicas, first_weight, 100, world.surge)
            );
            if template_changed {
                // §4.13: the intermediate canary becomes an "other" RS, a new one starts at 0.
                world.others.push(world.new);
                world.new = rs(0, 0);
            }
            world.weight = second_weight;
            world.settle(); // checks R+surge and R-unavailable at every reconcile
            prop_assert_eq!(
                world.counts(),
                approximate_weighted_counts(replicas, second_weight, 100, world.surge)
            );
            prop_assert!(world.others.iter().all(|rs| rs.spec == 0));
        }

        #[test]
        fn basic_canary_stays_safe_while_pods_become_ready_late(
            replicas in 1..30i32,
            max_surge in 0..=100i32,
            max_unavailable in 0..=100i32,
            first_weight in 0..=100i32,
            second_weight in 0..=100i32,
            template_changed in any::<bool>(),
            readiness in proptest::collection::vec(0..8u8, 0..40),
        ) {
            let (surge, unavailable) = (format!("{max_surge}%"), format!("{max_unavailable}%"));
            let mut world = World::settled_stable(replicas, &surge, &unavailable);
            world.weight = first_weight;
            world.settle_with_readiness(&readiness);
            if template_changed {
                world.others.push(world.new);
                world.new = rs(0, 0);
            }
            world.weight = second_weight;
            world.settle_with_readiness(&readiness); // R+surge / R-unavailable at every reconcile
            prop_assert_eq!(
                world.counts(),
                approximate_weighted_counts(replicas, second_weight, 100, world.surge)
            );
        }

        #[test]
        fn replica_math_never_panics_and_never_goes_negative(
            replicas in any::<i32>(),
            weight in any::<i32>(),
            max_weight in any::<i32>(),
            surge in any::<i32>(),
            unavailable in any::<i32>(),
            specs in proptest::collection::vec((any::<i32>(), any::<i32>()), 3..6),
            min_pods in proptest::option::of(any::<i32>()),
            current_weights in proptest::option::of((any::<i32>(), any::<i32>())),
            flags in any::<(bool, bool, bool)>(),
        ) {
            let all: Vec<RsReplicas> = specs.iter().map(|&(s, a)| rs(s, a)).collect();
            let (canary, stable) = approximate_weighted_counts(replicas, weight, max_weight, surge);
            prop_assert!(canary >= 0 && stable >= 0);

            let input = BasicCanaryInput {
                replicas, weight, max_weight, surge, unavailable,
                new_rs: Some(all[0]), stable_rs: Some(all[1]), other_rs: &all[2..],
            };
            let (new_count, stable_count) = basic_canary_counts(&input);
            prop_assert!(new_count >= 0 && stable_count >= 0);

            let others = scale_down_other_rs_for_canary(replicas, unavailable, weight, &all);
            prop_assert!(others.iter().all(|&count| count >= 0));

            let (dynamic_stable_scale, aborted, by_weight) = flags;
            let canary_scale = Some(if by_weight {
                CanaryScale::Weight(surge)
            } else {
                CanaryScale::Replicas(surge)
            });
            for canary_scale in [None, canary_scale] {
                let input = TrafficRoutedInput {
                    replicas, max_weight, desired_weight: weight, canary_scale,
                    min_pods_per_rs: min_pods, dynamic_stable_scale, aborted, current_weights,
                };
                let (canary, stable) = traffic_routed_counts(&input);
                prop_assert!(canary >= 0 && stable >= 0);
            }

            for value in [IntOrString::Int(surge), IntOrString::String(format!("{surge}%"))] {
                if let Ok(count) = resolve_max_surge(&value, replicas) {
                    prop_assert!(count >= 0);
                }
                if let Ok((s, u)) = resolve_fenceposts(&value, &value, replicas) {
                    prop_assert!(s >= 0 && u >= 0 && u <= replicas.max(0));
                }
            }
        }
    }
}
