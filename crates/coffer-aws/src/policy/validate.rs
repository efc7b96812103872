//! Policy validation with findings, in the spirit of IAM Access Analyzer's
//! policy checks (and for Secrets Manager's `ValidateResourcePolicy`).
//!
//! Parsing answers "can this be enforced?"; validation also answers "does it
//! do what its author probably meant?": a misspelt action grants nothing and
//! a `NotAction` in an Allow grants almost everything, both without any
//! error at request time.

use std::collections::BTreeMap;

use super::actions::known_actions;
use super::{wildcard, Effect, PatternSet, Policy};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The policy cannot be used as is.
    Error,
    /// The policy grants broader access than is likely intended.
    SecurityWarning,
    /// Part of the policy has no effect or is probably a mistake.
    Warning,
    /// Works, but could be written more clearly.
    Suggestion,
}

/// One result of [`validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Severity.
    pub severity: Severity,
    /// A stable machine-readable check name.
    pub code: &'static str,
    /// Where in the document (`Statement[0].Action[1]`), or empty.
    pub path: String,
    /// What was found and why it matters.
    pub message: String,
}

impl Finding {
    fn new(severity: Severity, code: &'static str, path: String, message: String) -> Self {
        Self {
            severity,
            code,
            path,
            message,
        }
    }
}

/// Validates a policy document. An empty result means no findings; a policy
/// passes when no finding has [`Severity::Error`].
pub fn validate(json: &str) -> Vec<Finding> {
    let policy = match Policy::parse(json) {
        Ok(p) => p,
        Err(e) => {
            return vec![Finding::new(
                Severity::Error,
                "PARSE_ERROR",
                e.path().to_string(),
                e.to_string(),
            )]
        }
    };
    let mut findings = Vec::new();
    check_sids(&policy, &mut findings);
    for (i, st) in policy.statements.iter().enumerate() {
        let path = format!("Statement[{i}]");
        let action_field = match st.actions {
            PatternSet::Any(_) => "Action",
            PatternSet::NoneOf(_) => "NotAction",
        };
        let resource_field = match st.resources {
            PatternSet::Any(_) => "Resource",
            PatternSet::NoneOf(_) => "NotResource",
        };
        if st.effect == Effect::Allow {
            check_broad_allow(st, &path, action_field, resource_field, &mut findings);
        }
        let mut services = Vec::new();
        for (j, action) in st.actions.patterns().iter().enumerate() {
            let item = format!("{path}.{action_field}[{j}]");
            if let Some(service) = check_action(action, &item, &mut findings) {
                services.push(service);
            }
        }
        for (j, resource) in st.resources.patterns().iter().enumerate() {
            let item = format!("{path}.{resource_field}[{j}]");
            check_resource(resource, &services, &item, &mut findings);
        }
    }
    findings.sort_by_key(|f| f.severity);
    findings
}

fn check_sids(policy: &Policy, findings: &mut Vec<Finding>) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, st) in policy.statements.iter().enumerate() {
        let Some(sid) = st.sid.as_deref() else {
            continue;
        };
        let path = format!("Statement[{i}].Sid");
        if let Some(first) = seen.insert(sid, i) {
            findings.push(Finding::new(
                Severity::Error,
                "DUPLICATE_SID",
                path.clone(),
                format!(
                    "Sid '{sid}' is also used by Statement[{first}]; statement ids must be unique"
                ),
            ));
        }
        if sid.is_empty() || !sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            findings.push(Finding::new(
                Severity::Suggestion,
                "SID_CHARACTERS",
                path,
                format!("Sid '{sid}' should contain only letters and digits, as IAM requires for identity policies"),
            ));
        }
    }
}

fn check_broad_allow(
    st: &super::Statement,
    path: &str,
    action_field: &str,
    resource_field: &str,
    findings: &mut Vec<Finding>,
) {
    if matches!(st.actions, PatternSet::NoneOf(_)) {
        findings.push(Finding::new(
            Severity::SecurityWarning,
            "ALLOW_WITH_NOT_ACTION",
            format!("{path}.{action_field}"),
            "Allow with NotAction grants every action except those listed, including ones added later".into(),
        ));
    }
    if matches!(st.resources, PatternSet::NoneOf(_)) {
        findings.push(Finding::new(
            Severity::SecurityWarning,
            "ALLOW_WITH_NOT_RESOURCE",
            format!("{path}.{resource_field}"),
            "Allow with NotResource grants access to every resource except those listed".into(),
        ));
    }
    let all_resources = matches!(&st.resources, PatternSet::Any(r) if r.iter().any(|r| r == "*"));
    if let PatternSet::Any(actions) = &st.actions {
        if actions.iter().any(|a| a == "*") {
            findings.push(Finding::new(
                Severity::SecurityWarning,
                "ALLOW_ALL_ACTIONS",
                format!("{path}.{action_field}"),
                "Allow with Action '*' grants every action, including deleting secrets and keys"
                    .into(),
            ));
        } else if all_resources {
            if let Some(a) = actions.iter().find(|a| a.ends_with(":*")) {
                findings.push(Finding::new(
                    Severity::SecurityWarning,
                    "ALLOW_SERVICE_ON_ALL_RESOURCES",
                    format!("{path}.{action_field}"),
                    format!("Allow with '{a}' on Resource '*' grants every action of the service on every resource"),
                ));
            }
        }
    }
}

/// Flags actions that match nothing Coffer serves; returns the action's
/// literal service prefix, if it has one.
fn check_action(action: &str, path: &str, findings: &mut Vec<Finding>) -> Option<String> {
    let (service, name) = action.split_once(':')?;
    if service.contains(['*', '?']) {
        return None;
    }
    let service = service.to_ascii_lowercase();
    let Some(known) = known_actions(&service) else {
        findings.push(Finding::new(
            Severity::Warning,
            "UNSUPPORTED_SERVICE",
            path.to_string(),
            format!("'{action}' belongs to service '{service}', which Coffer does not serve; it never matches a request"),
        ));
        return Some(service);
    };
    if !known.iter().any(|k| wildcard::matches_ignore_case(name, k)) {
        findings.push(Finding::new(
            Severity::Warning,
            "UNKNOWN_ACTION",
            path.to_string(),
            format!("'{action}' matches no {service} action; check the spelling"),
        ));
    }
    Some(service)
}

fn check_resource(
    resource: &str,
    action_services: &[String],
    path: &str,
    findings: &mut Vec<Finding>,
) {
    let Some(service) = resource.split(':').nth(2) else {
        return;
    };
    if service.contains(['*', '?']) || resource == "*" {
        return;
    }
    if known_actions(service).is_none() {
        findings.push(Finding::new(
            Severity::Warning,
            "UNSUPPORTED_RESOURCE_SERVICE",
            path.to_string(),
            format!("'{resource}' is a resource of service '{service}', which Coffer does not serve; it never matches a request"),
        ));
    } else if !action_services.is_empty() && !action_services.iter().any(|s| s == service) {
        findings.push(Finding::new(
            Severity::Warning,
            "RESOURCE_SERVICE_MISMATCH",
            path.to_string(),
            format!("'{resource}' is a {service} resource, but the statement's actions are for {}; this pair never matches", action_services.join(", ")),
        ));
    }
}
