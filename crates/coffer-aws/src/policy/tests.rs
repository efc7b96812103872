//! Parsing, evaluation and validation of access-key policies.

use super::*;

const PROD_ARN: &str = "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/db-AbCdEf";
const DEV_ARN: &str = "arn:aws:secretsmanager:us-east-1:000000000000:secret:dev/db-AbCdEf";
const KEY_ARN: &str = "arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn policy(statements: &str) -> Policy {
    Policy::parse(&format!(
        r#"{{"Version":"2012-10-17","Statement":{statements}}}"#
    ))
    .unwrap()
}

fn err(json: &str) -> PolicyError {
    Policy::parse(json).unwrap_err()
}

fn err_stmt(statement: &str) -> PolicyError {
    err(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{statement}]}}"#
    ))
}

#[test]
fn parses_string_or_list_and_single_statement_object() {
    let p = policy(
        r#"{"Sid":"Read","Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":["arn:aws:secretsmanager:*:000000000000:secret:prod/*"]}"#,
    );
    assert_eq!(p.statements.len(), 1);
    let st = &p.statements[0];
    assert_eq!(st.sid.as_deref(), Some("Read"));
    assert_eq!(st.effect, Effect::Allow);
    assert_eq!(
        st.actions,
        PatternSet::Any(vec!["secretsmanager:GetSecretValue".into()])
    );
    assert_eq!(st.resources.patterns().len(), 1);
}

#[test]
fn allow_deny_and_implicit_deny() {
    let p = policy(
        r#"[
        {"Effect":"Allow","Action":"secretsmanager:*","Resource":"arn:aws:secretsmanager:*:000000000000:secret:*"},
        {"Effect":"Deny","Action":["secretsmanager:DeleteSecret","secretsmanager:PutSecretValue"],"Resource":"arn:aws:secretsmanager:*:000000000000:secret:prod/*"},
        {"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}
    ]"#,
    );
    assert_eq!(
        p.evaluate("secretsmanager:GetSecretValue", PROD_ARN),
        Decision::Allow {
            policy: 0,
            statement: 0
        }
    );
    assert_eq!(
        p.evaluate("secretsmanager:DeleteSecret", PROD_ARN),
        Decision::ExplicitDeny {
            policy: 0,
            statement: 1
        }
    );
    assert!(p
        .evaluate("secretsmanager:DeleteSecret", DEV_ARN)
        .is_allowed());
    assert!(p.evaluate("kms:Decrypt", KEY_ARN).is_allowed());
    assert_eq!(p.evaluate("kms:Encrypt", KEY_ARN), Decision::ImplicitDeny);
    assert_eq!(
        p.evaluate(
            "secretsmanager:GetSecretValue",
            "arn:aws:secretsmanager:us-east-1:111111111111:secret:prod/db"
        ),
        Decision::ImplicitDeny
    );
}

#[test]
fn explicit_deny_in_any_policy_wins() {
    let allow = policy(r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#);
    let deny = policy(r#"{"Effect":"Deny","Action":"kms:*","Resource":"*"}"#);
    let both = [allow.clone(), deny];
    assert!(evaluate_all(&both, "secretsmanager:GetSecretValue", PROD_ARN).is_allowed());
    assert_eq!(
        evaluate_all(&both, "kms:Decrypt", KEY_ARN),
        Decision::ExplicitDeny {
            policy: 1,
            statement: 0
        }
    );
    assert_eq!(
        evaluate_all(&[], "kms:Decrypt", KEY_ARN),
        Decision::ImplicitDeny
    );
}

#[test]
fn actions_match_case_insensitively_resources_do_not() {
    let p = policy(
        r#"{"Effect":"Allow","Action":"SecretsManager:getSecret*","Resource":"arn:aws:secretsmanager:*:*:secret:Prod/*"}"#,
    );
    let upper = "arn:aws:secretsmanager:us-east-1:000000000000:secret:Prod/x";
    assert!(p
        .evaluate("secretsmanager:GetSecretValue", upper)
        .is_allowed());
    assert!(!p
        .evaluate("secretsmanager:GetSecretValue", PROD_ARN)
        .is_allowed());
}

#[test]
fn question_mark_matches_one_character() {
    let p = policy(
        r#"{"Effect":"Allow","Action":"kms:?ncrypt","Resource":"arn:aws:kms:us-east-?:*:key/*"}"#,
    );
    assert!(p.evaluate("kms:Encrypt", KEY_ARN).is_allowed());
    assert!(!p.evaluate("kms:Decrypt", KEY_ARN).is_allowed());
    assert!(!p
        .evaluate("kms:Encrypt", "arn:aws:kms:us-east-10:0:key/x")
        .is_allowed());
}

#[test]
fn not_action_and_not_resource() {
    let p = policy(
        r#"[{"Effect":"Allow","NotAction":"secretsmanager:Delete*","Resource":"*"},
           {"Effect":"Deny","Action":"*","NotResource":"arn:aws:*:*:000000000000:*"}]"#,
    );
    assert!(p
        .evaluate("secretsmanager:GetSecretValue", PROD_ARN)
        .is_allowed());
    assert_eq!(
        p.evaluate("secretsmanager:DeleteSecret", PROD_ARN),
        Decision::ImplicitDeny
    );
    assert_eq!(
        p.evaluate(
            "secretsmanager:GetSecretValue",
            "arn:aws:secretsmanager:us-east-1:111111111111:secret:x"
        ),
        Decision::ExplicitDeny {
            policy: 0,
            statement: 1
        }
    );
}

#[test]
fn parse_errors_name_the_statement_and_field() {
    let cases: Vec<(String, &str)> = vec![
        (err("not json").to_string(), "invalid JSON at line 1"),
        (
            err("[]").to_string(),
            "Policy: expected an object, found an array",
        ),
        (
            err(r#"{"Statement":[]}"#).to_string(),
            "Policy: missing required field 'Version'",
        ),
        (
            err(r#"{"Version":"2008-10-17","Statement":[]}"#).to_string(),
            "Version: must be \"2012-10-17\"",
        ),
        (
            err(r#"{"Version":"2012-10-17"}"#).to_string(),
            "Policy: missing required field 'Statement'",
        ),
        (
            err(r#"{"Version":"2012-10-17","Statement":[]}"#).to_string(),
            "Statement: must contain at least one statement",
        ),
        (
            err(r#"{"Version":"2012-10-17","Statement":"x"}"#).to_string(),
            "Statement: expected an object or an array of objects, found a string",
        ),
        (
            err(r#"{"Version":"2012-10-17","Statement":[],"Extra":1}"#).to_string(),
            "Policy: unknown field 'Extra'",
        ),
        (
            err_stmt(
                r#"{"Effect":"Allow","Action":"*","Resource":"*"},{"Action":"*","Resource":"*"}"#,
            )
            .to_string(),
            "Statement[1]: missing required field 'Effect'",
        ),
        (
            err_stmt(r#"{"Effect":"allow","Action":"*","Resource":"*"}"#).to_string(),
            "Statement[0].Effect: must be \"Allow\" or \"Deny\"",
        ),
        (
            err_stmt(r#"{"Effect":"Allow","Resource":"*"}"#).to_string(),
            "Statement[0]: missing required field 'Action'",
        ),
        (
            err_stmt(r#"{"Effect":"Allow","Action":"*"}"#).to_string(),
            "Statement[0]: missing required field 'Resource'",
        ),
        (
            err_stmt(r#"{"Effect":"Allow","Action":"*","NotAction":"kms:*","Resource":"*"}"#)
                .to_string(),
            "Statement[0]: 'Action' and 'NotAction' cannot both be present",
        ),
        (
            err_stmt(r#"{"Effect":"Allow","Action":"*","Resource":"*","NotResource":"*"}"#)
                .to_string(),
            "Statement[0]: 'Resource' and 'NotResource' cannot both be present",
        ),
        (
            err_stmt(
                r#"{"Effect":"Allow","Action":["kms:Decrypt","GetSecretValue"],"Resource":"*"}"#,
            )
            .to_string(),
            "Statement[0].Action[1]: 'GetSecretValue' is not an action",
        ),
        (
            err_stmt(r#"{"Effect":"Allow","Action":[],"Resource":"*"}"#).to_string(),
            "Statement[0].Action: must not be an empty list",
        ),
        (
            err_stmt(r#"{"Effect":"Allow","Action":[1],"Resource":"*"}"#).to_string(),
            "Statement[0].Action[0]: expected a string, found a number",
        ),
        (
            err_stmt(r#"{"Effect":"Allow","Action":{"a":1},"Resource":"*"}"#).to_string(),
            "Statement[0].Action: expected a string or an array of strings, found an object",
        ),
        (
            err_stmt(r#"{"Effect":"Allow","Action":"*","Resource":"prod/*"}"#).to_string(),
            "Statement[0].Resource: 'prod/*' is not a resource",
        ),
        (
            err_stmt(r#"{"Effect":"Allow","Action":"*","Resource":["*","arn:aws:kms"]}"#)
                .to_string(),
            "Statement[0].Resource[1]: 'arn:aws:kms' is not a resource",
        ),
        (
            err_stmt(r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{}}"#)
                .to_string(),
            "Statement[0]: unsupported field 'Condition'",
        ),
        (
            err_stmt(r#"{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}"#)
                .to_string(),
            "Statement[0]: unsupported field 'Principal'",
        ),
        (
            err_stmt(r#"{"Effect":"Allow","Actions":"*","Resource":"*"}"#).to_string(),
            "Statement[0]: unknown field 'Actions'",
        ),
        (
            err_stmt(r#"{"Sid":5,"Effect":"Allow","Action":"*","Resource":"*"}"#).to_string(),
            "Statement[0].Sid: expected a string, found a number",
        ),
    ];
    for (got, want) in cases {
        assert!(got.starts_with(want), "got {got:?}, want prefix {want:?}");
    }
}

#[test]
fn duplicate_keys_are_rejected() {
    let e = err_stmt(r#"{"Effect":"Allow","Effect":"Deny","Action":"*","Resource":"*"}"#);
    assert!(
        matches!(&e, PolicyError::Json { message, .. } if message.contains("duplicate key 'Effect'")),
        "{e:?}"
    );
}

#[test]
fn size_and_depth_are_bounded() {
    let big = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"*","Resource":"{}"}}]}}"#,
        "a".repeat(MAX_POLICY_BYTES)
    );
    assert!(matches!(err(&big), PolicyError::TooLarge { .. }));
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    assert!(matches!(err(&deep), PolicyError::Json { .. }));
}

fn codes(json: &str) -> Vec<(&'static str, Severity, String)> {
    validate(json)
        .into_iter()
        .map(|f| (f.code, f.severity, f.path))
        .collect()
}

fn doc(statements: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":{statements}}}"#)
}

#[test]
fn a_tight_policy_has_no_findings() {
    assert!(validate(&doc(
        r#"[{"Sid":"ReadProd","Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret"],"Resource":"arn:aws:secretsmanager:*:000000000000:secret:prod/*"},
            {"Effect":"Allow","Action":"kms:Decrypt","Resource":"arn:aws:kms:*:000000000000:key/*"}]"#
    ))
    .is_empty());
}

#[test]
fn validation_reports_parse_errors_with_location() {
    let f = validate(&doc(
        r#"[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{}}]"#,
    ));
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Severity::Error);
    assert_eq!(f[0].code, "PARSE_ERROR");
    assert_eq!(f[0].path, "Statement[0]");
    assert!(f[0].message.contains("Condition"));
}

#[test]
fn validation_findings() {
    let c = codes(&doc(
        r#"[{"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"},
            {"Sid":"A","Effect":"Allow","NotAction":"kms:*","NotResource":"arn:aws:kms:*:*:key/*"},
            {"Sid":"bad-sid","Effect":"Deny","Action":["secretsmanager:GetSecretValu","s3:GetObject","kms:Get*"],"Resource":["arn:aws:s3:::bucket/*","arn:aws:kms:*:*:key/*"]},
            {"Effect":"Allow","Action":"secretsmanager:*","Resource":"*"},
            {"Effect":"Allow","Action":"kms:Decrypt","Resource":"arn:aws:secretsmanager:*:*:secret:x"}]"#,
    ));
    let expect = [
        ("DUPLICATE_SID", Severity::Error, "Statement[1].Sid"),
        (
            "ALLOW_ALL_ACTIONS",
            Severity::SecurityWarning,
            "Statement[0].Action",
        ),
        (
            "ALLOW_WITH_NOT_ACTION",
            Severity::SecurityWarning,
            "Statement[1].NotAction",
        ),
        (
            "ALLOW_WITH_NOT_RESOURCE",
            Severity::SecurityWarning,
            "Statement[1].NotResource",
        ),
        (
            "ALLOW_SERVICE_ON_ALL_RESOURCES",
            Severity::SecurityWarning,
            "Statement[3].Action",
        ),
        (
            "UNKNOWN_ACTION",
            Severity::Warning,
            "Statement[2].Action[0]",
        ),
        (
            "UNSUPPORTED_SERVICE",
            Severity::Warning,
            "Statement[2].Action[1]",
        ),
        (
            "UNSUPPORTED_RESOURCE_SERVICE",
            Severity::Warning,
            "Statement[2].Resource[0]",
        ),
        (
            "RESOURCE_SERVICE_MISMATCH",
            Severity::Warning,
            "Statement[4].Resource[0]",
        ),
        ("SID_CHARACTERS", Severity::Suggestion, "Statement[2].Sid"),
    ];
    for (code, sev, path) in expect {
        assert!(
            c.iter()
                .any(|(c2, s2, p2)| *c2 == code && *s2 == sev && p2 == path),
            "missing {code} at {path} in {c:#?}"
        );
    }
    assert_eq!(c.len(), expect.len(), "{c:#?}");
    // Sorted most severe first.
    assert!(c.windows(2).all(|w| w[0].1 <= w[1].1));
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary text never panics the parser or the validator.
        #[test]
        fn arbitrary_text_never_panics(s in ".{0,300}") {
            let _ = Policy::parse(&s);
            let _ = validate(&s);
        }

        /// Structurally plausible documents with arbitrary values never
        /// panic, and evaluation of whatever parses never panics either.
        #[test]
        fn arbitrary_statements_never_panic(
            effect in "(Allow|Deny|allow|x)",
            action in "[a-zA-Z:*?-]{0,30}",
            resource in "[a-z0-9:*?/-]{0,40}",
            request in "[a-zA-Z:*?/0-9-]{0,40}",
        ) {
            let json = format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"{effect}","Action":"{action}","Resource":"{resource}"}}]}}"#
            );
            if let Ok(p) = Policy::parse(&json) {
                let _ = p.evaluate(&request, &request);
            }
            let _ = validate(&json);
        }
    }
}

mod resource_policies {
    use super::super::*;

    fn caller(name: &str) -> Principal {
        Principal {
            arn: format!("arn:aws:iam::000000000000:user/{name}"),
            account: "000000000000".into(),
        }
    }

    const SECRET: &str = "arn:aws:secretsmanager:local-1:000000000000:secret:app/db-AbCdEf";

    #[test]
    fn principals_are_required_and_checked() {
        let missing = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        assert!(matches!(
            Policy::parse_resource(missing),
            Err(PolicyError::MissingField {
                field: "Principal",
                ..
            })
        ));
        for bad in [
            r#"{"Service":"lambda.amazonaws.com"}"#,
            r#"{"AWS":"someone"}"#,
            r#"{"AWS":[]}"#,
            r#""nobody""#,
        ] {
            let doc = format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{bad},"Action":"*","Resource":"*"}}]}}"#
            );
            assert!(Policy::parse_resource(&doc).is_err(), "{bad}");
        }
        // An identity policy still may not name principals.
        let with_principal = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}"#;
        assert!(Policy::parse(with_principal).is_err());
        assert!(Policy::parse_resource(with_principal).unwrap().is_public());
    }

    #[test]
    fn identity_and_resource_policies_combine_as_in_iam() {
        let resource = Policy::parse_resource(r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/ci"},"Action":"secretsmanager:GetSecretValue","Resource":"*"},
            {"Effect":"Deny","Principal":{"AWS":["arn:aws:iam::000000000000:user/intern"]},"Action":"secretsmanager:*","Resource":"*"}]}"#).unwrap();
        assert!(!resource.is_public());
        let everything = Policy::parse(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:*","Resource":"*"}]}"#).unwrap();
        let get = "secretsmanager:GetSecretValue";
        // Granted by the resource policy alone.
        assert!(
            evaluate_with_resource_policy(None, Some(&resource), &caller("ci"), get, SECRET)
                .is_allowed()
        );
        // Not for another caller.
        assert_eq!(
            evaluate_with_resource_policy(None, Some(&resource), &caller("other"), get, SECRET),
            Decision::ImplicitDeny
        );
        // The resource policy's Deny beats the identity policy's Allow.
        assert!(matches!(
            evaluate_with_resource_policy(
                Some(&everything),
                Some(&resource),
                &caller("intern"),
                get,
                SECRET
            ),
            Decision::ExplicitDeny { policy: 1, .. }
        ));
        // Without a resource policy, the identity policy decides.
        assert!(evaluate_with_resource_policy(
            Some(&everything),
            None,
            &caller("intern"),
            get,
            SECRET
        )
        .is_allowed());
        // The account as principal delegates to the caller's own policy, granting nothing
        // by itself; a Deny naming the account applies to everyone in it.
        let account = Policy::parse_resource(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"*","Resource":"*"}]}"#).unwrap();
        assert_eq!(
            evaluate_with_resource_policy(None, Some(&account), &caller("x"), get, SECRET),
            Decision::ImplicitDeny
        );
        let deny_account = Policy::parse_resource(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"000000000000"},"Action":"*","Resource":"*"}]}"#).unwrap();
        assert!(matches!(
            evaluate_with_resource_policy(
                Some(&everything),
                Some(&deny_account),
                &caller("x"),
                get,
                SECRET
            ),
            Decision::ExplicitDeny { .. }
        ));
    }

    #[test]
    fn a_key_policy_must_allow_or_delegate_to_the_account() {
        let kms_all = Policy::parse(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#).unwrap();
        let default = Policy::parse_resource(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"kms:*","Resource":"*"}]}"#).unwrap();
        let only_ci = Policy::parse_resource(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/ci"},"Action":"kms:Decrypt","Resource":"*"}]}"#).unwrap();
        let key = "arn:aws:kms:local-1:000000000000:key/k";
        // The default policy delegates: the identity policy decides.
        assert!(
            evaluate_key_policy(Some(&kms_all), &default, &caller("x"), "kms:Encrypt", key)
                .is_allowed()
        );
        assert!(
            !evaluate_key_policy(None, &default, &caller("x"), "kms:Encrypt", key).is_allowed()
        );
        // A policy that does not delegate ignores identity policies...
        assert!(
            !evaluate_key_policy(Some(&kms_all), &only_ci, &caller("x"), "kms:Decrypt", key)
                .is_allowed()
        );
        // ...and grants whom it names.
        assert!(
            evaluate_key_policy(None, &only_ci, &caller("ci"), "kms:Decrypt", key).is_allowed()
        );
    }
}
