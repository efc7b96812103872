//! What an operation works with: the vault, who is calling, their policy, and the names
//! (region, account) ARNs are made of.

use coffer_aws::policy::{
    evaluate_key_policy, evaluate_with_resource_policy, Decision, Policy, Principal,
};
use coffer_aws::AwsError;
use coffer_core::service::{self, Request, Response};
use coffer_core::Vault;

use crate::engine_errors::aws_error;

/// The two services served on one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    SecretsManager,
    Kms,
}

impl Service {
    /// `secretsmanager.GetSecretValue` / `TrentService.Encrypt` → service and operation.
    pub fn parse_target(target: &str) -> Option<(Service, &str)> {
        let (prefix, operation) = target.split_once('.')?;
        let service = match prefix {
            "secretsmanager" => Service::SecretsManager,
            "TrentService" => Service::Kms,
            _ => return None,
        };
        let valid = !operation.is_empty()
            && operation.len() <= 64
            && operation.bytes().all(|b| b.is_ascii_alphanumeric());
        valid.then_some((service, operation))
    }

    /// The service name in the SigV4 credential scope.
    pub fn signing_name(self) -> &'static str {
        match self {
            Service::SecretsManager => "secretsmanager",
            Service::Kms => "kms",
        }
    }

    /// The prefix of IAM action names.
    pub fn action_prefix(self) -> &'static str {
        self.signing_name()
    }

    /// The error code of a request the vault's state refuses.
    pub fn locked_code(self) -> &'static str {
        match self {
            Service::SecretsManager => "InvalidRequestException",
            Service::Kms => "KMSInvalidStateException",
        }
    }

    pub fn internal_error_code(self) -> &'static str {
        match self {
            Service::SecretsManager => "InternalServiceError",
            Service::Kms => "KMSInternalException",
        }
    }

    /// The error code of a parameter that breaks a documented constraint.
    pub fn invalid_parameter_code(self) -> &'static str {
        match self {
            Service::SecretsManager => "InvalidParameterException",
            Service::Kms => "ValidationException",
        }
    }
}

/// One authenticated request's view of the vault.
pub struct Call<'a> {
    pub vault: &'a mut Vault,
    pub access_key: &'a str,
    policy: Option<Policy>,
    principal: Principal,
    pub service: Service,
    pub region: String,
    pub account: String,
}

impl<'a> Call<'a> {
    pub fn new(
        vault: &'a mut Vault,
        access_key: &'a str,
        key_name: &str,
        policy: Option<Policy>,
        service: Service,
    ) -> Result<Self, AwsError> {
        let region = vault
            .aws_region_name()
            .map_err(|e| aws_error(service, &e))?;
        let account = vault.aws_account_id().map_err(|e| aws_error(service, &e))?;
        let principal = Principal {
            arn: format!("arn:aws:iam::{account}:user/{key_name}"),
            account: account.clone(),
        };
        Ok(Call {
            vault,
            access_key,
            policy,
            principal,
            service,
            region,
            account,
        })
    }

    /// Refuses (and audits) unless the caller's policy allows `operation` on `resource`.
    pub fn authorize(&mut self, operation: &str, resource: &str) -> Result<(), AwsError> {
        self.authorize_with(operation, resource, None)
    }

    /// Like [`Call::authorize`] for a secret (by its ARN): its resource policy counts too
    /// (an explicit Deny in either policy refuses; an Allow in either grants).
    pub fn authorize_secret(
        &mut self,
        operation: &str,
        arn: &str,
        resource_policy: Option<&str>,
    ) -> Result<(), AwsError> {
        // Checked when stored and MACed since: only a newer Coffer's policy could fail to
        // parse here, and it then grants nothing rather than something.
        let resource_policy = resource_policy.and_then(|p| Policy::parse_resource(p).ok());
        self.authorize_with(operation, arn, resource_policy.as_ref())
    }

    /// Like [`Call::authorize`] for a KMS key (given by id): a key policy set with
    /// PutKeyPolicy decides as KMS decides (identity policies count only where it
    /// delegates to the account); without one, the default policy delegates everything.
    pub fn authorize_key(&mut self, operation: &str, key_id: &str) -> Result<(), AwsError> {
        let arn = crate::arn::key_arn(&self.region, &self.account, key_id);
        let key_policy = self
            .vault
            .key_policy(key_id)
            .map_err(|e| aws_error(self.service, &e))?
            .and_then(|p| Policy::parse_resource(&p).ok());
        match key_policy {
            None => self.authorize_with(operation, &arn, None),
            Some(key_policy) => {
                let action = format!("{}:{operation}", self.service.action_prefix());
                let decision = evaluate_key_policy(
                    self.policy.as_ref(),
                    &key_policy,
                    &self.principal,
                    &action,
                    &arn,
                );
                self.decide(decision, &action, &arn)
            }
        }
    }

    fn authorize_with(
        &mut self,
        operation: &str,
        resource: &str,
        resource_policy: Option<&Policy>,
    ) -> Result<(), AwsError> {
        let action = format!("{}:{operation}", self.service.action_prefix());
        let decision = evaluate_with_resource_policy(
            self.policy.as_ref(),
            resource_policy,
            &self.principal,
            &action,
            resource,
        );
        self.decide(decision, &action, resource)
    }

    fn decide(&mut self, decision: Decision, action: &str, resource: &str) -> Result<(), AwsError> {
        if decision.is_allowed() {
            return Ok(());
        }
        let explicit = matches!(decision, Decision::ExplicitDeny { .. });
        let detail = format!(
            "access_key={} action={action} resource={resource} deny={}",
            self.access_key,
            if explicit { "explicit" } else { "implicit" }
        );
        // The refusal stands even if it cannot be recorded.
        let _ = self.vault.record_access_denied(detail);
        Err(AwsError::access_denied(
            self.access_key,
            action,
            resource,
            explicit,
        ))
    }

    /// Runs an engine request, mapping its failure to this service's error codes.
    pub fn execute(&mut self, request: Request) -> Result<Response, AwsError> {
        service::execute(self.vault, request).map_err(|e| aws_error(self.service, &e))
    }
}
