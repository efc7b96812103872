//! IAM-like policies attached to Coffer access keys.
//!
//! A policy is the JSON document AWS users already know:
//!
//! ```json
//! {"Version": "2012-10-17",
//!  "Statement": [{"Effect": "Allow",
//!                 "Action": ["secretsmanager:GetSecretValue"],
//!                 "Resource": "arn:aws:secretsmanager:*:000000000000:secret:prod/*"}]}
//! ```
//!
//! Only the subset whose meaning is unambiguous without IAM's wider context
//! is supported: `Effect`, `Action`/`NotAction`, `Resource`/`NotResource`,
//! `Sid`. `Principal`, `NotPrincipal` and `Condition` are rejected by name
//! rather than ignored, because silently ignoring a condition would grant
//! more than its author meant.
//!
//! Evaluation follows IAM: an explicit `Deny` wins, otherwise any `Allow`
//! grants, otherwise the request is implicitly denied.

mod actions;
mod parse;
mod validate;
mod wildcard;

pub use actions::{KMS_ACTIONS, SECRETSMANAGER_ACTIONS};
pub use parse::{PolicyError, MAX_POLICY_BYTES};
pub use validate::{validate, Finding, Severity};
pub use wildcard::{matches as wildcard_match, matches_ignore_case as wildcard_match_ignore_case};

/// The only policy language version accepted.
pub const POLICY_VERSION: &str = "2012-10-17";

/// Whether a statement grants or refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Grants the matched actions on the matched resources.
    Allow,
    /// Refuses them, overriding any `Allow`.
    Deny,
}

/// A list of wildcard patterns, either matched directly (`Action`,
/// `Resource`) or negated (`NotAction`, `NotResource`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternSet {
    /// Matches when any pattern matches.
    Any(Vec<String>),
    /// Matches when no pattern matches.
    NoneOf(Vec<String>),
}

impl PatternSet {
    /// The patterns, whichever way they are applied.
    pub fn patterns(&self) -> &[String] {
        match self {
            Self::Any(p) | Self::NoneOf(p) => p,
        }
    }

    fn matches(&self, value: &str, case_insensitive: bool) -> bool {
        let hit = |p: &String| {
            if case_insensitive {
                wildcard::matches_ignore_case(p, value)
            } else {
                wildcard::matches(p, value)
            }
        };
        match self {
            Self::Any(p) => p.iter().any(hit),
            Self::NoneOf(p) => !p.iter().any(hit),
        }
    }
}

/// One statement of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Optional statement id.
    pub sid: Option<String>,
    /// Allow or Deny.
    pub effect: Effect,
    /// `Action` (Any) or `NotAction` (NoneOf); matched case-insensitively.
    pub actions: PatternSet,
    /// `Resource` (Any) or `NotResource` (NoneOf); matched case-sensitively.
    pub resources: PatternSet,
    /// `Principal` (Any) or `NotPrincipal` (NoneOf) of a resource policy; `None` in an
    /// access-key policy, which applies to the key it is attached to.
    pub principals: Option<PatternSet>,
}

/// Who is asking, in the forms a resource policy's `Principal` may name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The caller's ARN (`arn:aws:iam::ACCOUNT:user/NAME`).
    pub arn: String,
    /// The account id (`123456789012`), also matched as `arn:aws:iam::ACCOUNT:root`.
    pub account: String,
}

impl Principal {
    /// Whether `set` names this caller. For an Allow, only the caller's own ARN (or
    /// `"*"`) counts: naming the account (`ACCOUNT` or `arn:aws:iam::ACCOUNT:root`) in a
    /// resource policy delegates to the account's own policies, as in IAM, and grants
    /// nothing by itself. A Deny naming the account applies to everyone in it.
    fn matches(&self, set: &PatternSet, effect: Effect) -> bool {
        let root = format!("arn:aws:iam::{}:root", self.account);
        let hit = |p: &String| {
            p == "*"
                || wildcard::matches(p, &self.arn)
                || (effect == Effect::Deny && (*p == root || *p == self.account))
        };
        match set {
            PatternSet::Any(p) => p.iter().any(hit),
            PatternSet::NoneOf(p) => !p.iter().any(hit),
        }
    }

    /// Whether an Allow in `set` delegates to this caller's account.
    fn account_named(&self, set: &PatternSet) -> bool {
        let root = format!("arn:aws:iam::{}:root", self.account);
        matches!(set, PatternSet::Any(p) if p.iter().any(|p| *p == root || *p == self.account))
    }
}

impl Statement {
    /// Whether this statement applies to `action` on `resource`.
    pub fn applies_to(&self, action: &str, resource: &str) -> bool {
        self.principals.is_none()
            && self.actions.matches(action, true)
            && self.resources.matches(resource, false)
    }

    /// Whether this statement applies to `principal` doing `action` on `resource`.
    pub fn applies_to_principal(
        &self,
        principal: &Principal,
        action: &str,
        resource: &str,
    ) -> bool {
        let who = match &self.principals {
            None => true,
            Some(set) => principal.matches(set, self.effect),
        };
        who && self.actions.matches(action, true) && self.resources.matches(resource, false)
    }
}

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Optional policy id.
    pub id: Option<String>,
    /// The statements, in document order.
    pub statements: Vec<Statement>,
}

/// The outcome of evaluating policies for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by the statement at this index (of the first policy that
    /// allowed, when evaluating several).
    Allow {
        /// Index of the policy in the evaluated list.
        policy: usize,
        /// Index of the allowing statement in that policy.
        statement: usize,
    },
    /// Refused by an explicit `Deny` statement.
    ExplicitDeny {
        /// Index of the policy in the evaluated list.
        policy: usize,
        /// Index of the denying statement in that policy.
        statement: usize,
    },
    /// No statement allowed it.
    ImplicitDeny,
}

impl Decision {
    /// True only for [`Decision::Allow`].
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow { .. })
    }
}

impl Policy {
    /// Parses and checks a policy document; see [`PolicyError`] for what is
    /// rejected.
    pub fn parse(json: &str) -> Result<Self, PolicyError> {
        parse::parse(json)
    }

    /// Parses a resource policy (attached to a secret): like [`Policy::parse`], but every
    /// statement must name its `Principal` (or `NotPrincipal`): `"*"` or
    /// `{"AWS": ARN-or-account | [...]}`.
    pub fn parse_resource(json: &str) -> Result<Self, PolicyError> {
        parse::parse_resource(json)
    }

    /// Whether an `Allow` statement of this policy names every principal (`"*"`): the
    /// broad access `BlockPublicPolicy` refuses.
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(|st| {
            st.effect == Effect::Allow
                && match &st.principals {
                    Some(PatternSet::Any(p)) => p.iter().any(|p| p == "*"),
                    Some(PatternSet::NoneOf(_)) => true,
                    None => false,
                }
        })
    }

    /// Evaluates this policy alone for `action` (e.g.
    /// `secretsmanager:GetSecretValue`) on `resource` (an ARN).
    pub fn evaluate(&self, action: &str, resource: &str) -> Decision {
        evaluate_all(std::slice::from_ref(self), action, resource)
    }
}

/// Evaluates a caller's identity policy and a resource's policy together, as IAM does
/// within one account: an explicit Deny in either wins; otherwise an Allow in either
/// grants. Policy indexes in the decision are 0 for the identity policy and 1 for the
/// resource policy.
pub fn evaluate_with_resource_policy(
    identity: Option<&Policy>,
    resource_policy: Option<&Policy>,
    principal: &Principal,
    action: &str,
    resource: &str,
) -> Decision {
    let mut allow = None;
    for (pi, policy) in [identity, resource_policy].into_iter().enumerate() {
        let Some(policy) = policy else { continue };
        for (si, st) in policy.statements.iter().enumerate() {
            if !st.applies_to_principal(principal, action, resource) {
                continue;
            }
            match st.effect {
                Effect::Deny => {
                    return Decision::ExplicitDeny {
                        policy: pi,
                        statement: si,
                    }
                }
                Effect::Allow => {
                    allow.get_or_insert(Decision::Allow {
                        policy: pi,
                        statement: si,
                    });
                }
            }
        }
    }
    allow.unwrap_or(Decision::ImplicitDeny)
}

/// Evaluates a KMS key policy with the caller's identity policy, as KMS does: an
/// explicit Deny in either refuses; the key policy may allow the caller directly; an
/// identity policy counts only if the key policy delegates to the account (names it in an
/// Allow for the action), as KMS's default key policy does.
pub fn evaluate_key_policy(
    identity: Option<&Policy>,
    key_policy: &Policy,
    principal: &Principal,
    action: &str,
    resource: &str,
) -> Decision {
    let combined =
        evaluate_with_resource_policy(identity, Some(key_policy), principal, action, resource);
    match combined {
        Decision::ExplicitDeny { .. } => combined,
        Decision::Allow { policy: 1, .. } => combined,
        _ => {
            let delegates = key_policy.statements.iter().any(|st| {
                st.effect == Effect::Allow
                    && st
                        .principals
                        .as_ref()
                        .is_some_and(|set| principal.account_named(set))
                    && st.actions.matches(action, true)
                    && st.resources.matches(resource, false)
            });
            if delegates {
                combined
            } else {
                Decision::ImplicitDeny
            }
        }
    }
}

/// Evaluates several policies together (all attached to one key): any
/// explicit Deny in any of them wins over every Allow.
pub fn evaluate_all(policies: &[Policy], action: &str, resource: &str) -> Decision {
    let mut allow = None;
    for (pi, policy) in policies.iter().enumerate() {
        for (si, st) in policy.statements.iter().enumerate() {
            if !st.applies_to(action, resource) {
                continue;
            }
            match st.effect {
                Effect::Deny => {
                    return Decision::ExplicitDeny {
                        policy: pi,
                        statement: si,
                    }
                }
                Effect::Allow => {
                    allow.get_or_insert(Decision::Allow {
                        policy: pi,
                        statement: si,
                    });
                }
            }
        }
    }
    allow.unwrap_or(Decision::ImplicitDeny)
}

#[cfg(test)]
mod tests;
