//! Rollout state and live traffic as API views.

use std::time::Duration;

use switchyard_api::{InstanceView, MetricView, ReleaseTraffic, RolloutView};
use switchyard_control::RolloutSnapshot;
use switchyard_core::manifest::app::CanaryStep;
use switchyard_core::{ReleaseMetrics, Timestamp};
use switchyard_rollout::machine::Phase;
use switchyard_rollout::plan::PlanStep;

/// Window of the live traffic shown beside a rollout.
pub const LIVE_WINDOW: Duration = Duration::from_secs(10);

/// Describes a step of a plan in words.
pub fn describe_plan_step(step: &PlanStep) -> String {
    match step {
        PlanStep::Canary(step) => describe_step(step),
        PlanStep::Preview => "preview".into(),
        PlanStep::SmokeTests(tests) => format!("smoke tests ({})", tests.len()),
        PlanStep::Batch(b) => format!("batch: {} new, {} old instance(s)", b.canary, b.stable),
    }
}

/// Describes a step in words.
pub fn describe_step(step: &CanaryStep) -> String {
    match step {
        CanaryStep::SetWeight(w) => format!("setWeight {}", w.get()),
        CanaryStep::Pause(p) => match p.duration {
            Some(d) => format!("pause {}", switchyard_core::duration::format(d)),
            None => "pause (until promoted)".into(),
        },
        CanaryStep::Analysis(a) => {
            let names: Vec<&str> = a.templates.iter().map(|t| t.as_str()).collect();
            format!("analysis {}", names.join(", "))
        }
        CanaryStep::Approval(a) => match a.timeout {
            Some(t) => format!(
                "approval (times out in {})",
                switchyard_core::duration::format(t)
            ),
            None => "approval".into(),
        },
        CanaryStep::Bake(b) => format!("bake {}", switchyard_core::duration::format(b.duration)),
        CanaryStep::SetHeaderRoute(h) if h.matches.is_empty() => "remove header route".into(),
        CanaryStep::SetHeaderRoute(h) => format!("header route ({} condition(s))", h.matches.len()),
        CanaryStep::SetMirror(m) => format!("mirror {}%", m.percent.get()),
        CanaryStep::SetCanaryScale(scale) => format!("setCanaryScale {scale}"),
        CanaryStep::Adaptive(a) => format!(
            "adaptive {}-{}% (error budget {})",
            a.min_weight.get(),
            a.max_weight.get(),
            switchyard_core::human::number(&a.error_budget.to_string())
        ),
    }
}

/// The view of a rollout with its releases' live traffic.
/// [`rollout_view`] with how far the app's routes got across the proxies.
pub fn rollout_view_in(ctx: &crate::router::ServerContext, s: &RolloutSnapshot) -> RolloutView {
    let mut view = rollout_view(s, ctx.metrics.as_ref());
    let unhealthy = ctx.dataplane.unhealthy_endpoints(&s.app);
    let r = &s.rollout;
    for t in &mut view.traffic {
        let Some(release) = [&r.stable, &r.canary]
            .into_iter()
            .chain(r.baseline.as_ref())
            .find(|rel| rel.version.as_str() == t.version)
        else {
            continue;
        };
        t.endpoints = ctx
            .controller
            .endpoints(&s.app, &release.version)
            .into_iter()
            .map(|address| InstanceView {
                address: address.to_string(),
                health: instance_health(&address, unhealthy.as_ref()).into(),
            })
            .collect();
    }
    let (applied, proxies) = ctx.dataplane.app_applied(&s.app);
    view.routes = Some(switchyard_api::RoutesApplied {
        applied,
        proxies,
        cluster: ctx.controller.routes_in_cluster(&s.app),
    });
    view
}

/// An instance's health as the proxies see it: `unhealthy` when one avoids it, `unknown` when
/// no proxy serves the app (`unhealthy` is `None`: its cluster routes it), else `healthy`.
pub fn instance_health(
    address: &std::net::SocketAddr,
    unhealthy: Option<&std::collections::BTreeSet<std::net::SocketAddr>>,
) -> &'static str {
    match unhealthy {
        None => "unknown",
        Some(set) if set.contains(address) => "unhealthy",
        Some(_) => "healthy",
    }
}

pub fn rollout_view(s: &RolloutSnapshot, metrics: &dyn ReleaseMetrics) -> RolloutView {
    let r = &s.rollout;
    let paused_until = r.phase.deadline().map(Timestamp::to_rfc3339);
    let analysis = r
        .analysis
        .iter()
        .chain(r.background.iter())
        .flat_map(|run| run.metrics.iter())
        .map(|m| MetricView {
            template: m.template.clone(),
            metric: m.spec.name.to_string(),
            status: serde_json::to_value(m.status)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            taken: m.taken,
            count: m.spec.count(),
            failed: m.failed,
            inconclusive: m.inconclusive,
            errors: m.errors,
            last_value: m.last.as_ref().and_then(|l| l.value.clone()),
            last_message: m.last.as_ref().map(|l| l.message.clone()),
        })
        .collect();
    let baseline_weight = if r.baseline.is_some() {
        r.weight.min(100 - r.weight)
    } else {
        0
    };
    let (stable_role, canary_role) = roles(&r.phase);
    let traffic = [
        (
            &r.stable,
            stable_role,
            100 - r.weight - baseline_weight,
            r.stable_instances(),
        ),
        (&r.canary, canary_role, r.weight, r.canary_instances()),
    ]
    .into_iter()
    .chain(
        r.baseline
            .iter()
            .map(|b| (b, "baseline", baseline_weight, b.instances())),
    )
    .map(|(release, role, weight, instances)| {
        let w = metrics
            .window(s.app.as_str(), release.version.as_str(), LIVE_WINDOW)
            .unwrap_or_default();
        ReleaseTraffic {
            version: release.version.to_string(),
            role: role.into(),
            weight,
            instances,
            endpoints: Vec::new(),
            window_s: LIVE_WINDOW.as_secs_f64(),
            requests: w.requests,
            rps: w.rps(),
            error_rate: w.error_rate(),
            p50_ms: w.p50.map(|v| v * 1e3),
            p99_ms: w.p99.map(|v| v * 1e3),
        }
    })
    .collect();
    let decided_after_s = match (r.traffic_since, r.finished_at) {
        (Some(from), Some(to)) => Some(to.since(from).as_secs_f64()),
        _ => None,
    };
    RolloutView {
        id: s.id,
        app: s.app.to_string(),
        version: r.canary.version.to_string(),
        stable_version: r.stable.version.to_string(),
        phase: r.phase.name().to_string(),
        active: !r.phase.is_terminal(),
        paused_until,
        step: r.step,
        steps: r.steps.iter().map(describe_plan_step).collect(),
        weight: r.weight,
        reason: r.reason.clone(),
        started_at: r.started_at.to_rfc3339(),
        traffic_since: r.traffic_since.map(Timestamp::to_rfc3339),
        finished_at: r.finished_at.map(Timestamp::to_rfc3339),
        decided_after_s,
        analysis,
        policy: r.last_policy_check.clone(),
        traffic,
        routes: None,
    }
}

/// The names of the stable and the canary release for a rollout in `phase`: what each one is
/// once the rollout has ended, not what it was while it ran.
fn roles(phase: &Phase) -> (&'static str, &'static str) {
    match phase {
        Phase::Succeeded => ("previous", "current"),
        Phase::RolledBack | Phase::Aborted | Phase::Failed => ("current", "rolled-back"),
        _ => ("stable", "canary"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_are_named_by_what_they_are_once_the_rollout_ended() {
        assert_eq!(roles(&Phase::Analyzing), ("stable", "canary"));
        assert_eq!(roles(&Phase::Succeeded), ("previous", "current"));
        for ended in [Phase::RolledBack, Phase::Aborted, Phase::Failed] {
            assert_eq!(roles(&ended), ("current", "rolled-back"));
        }
    }
}
