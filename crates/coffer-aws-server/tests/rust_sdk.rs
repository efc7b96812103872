//! The Rust AWS SDK (aws-sdk-secretsmanager, aws-sdk-kms) against the server in process,
//! on a vault on swtpm: an SDK configured for `us-east-1` works unchanged.

use std::sync::{Arc, Mutex};

use aws_credential_types::Credentials;
use aws_sdk_kms::primitives::Blob;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use coffer_aws_server::AwsListener;
use coffer_core::tpm::PcrBinding;
use coffer_core::Vault;

const PIN: &str = "rust-sdk-test-pin";
const ALL: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:*","kms:*"],"Resource":"*"}]}"#;

fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

#[tokio::test(flavor = "current_thread")]
async fn the_rust_sdk_works_unchanged() {
    let swtpm = coffer_testkit::Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let mut vault = Vault::init(
        &dir.path().join("v/vault.db"),
        &swtpm.tcti(),
        PIN,
        PcrBinding::default(),
    )
    .unwrap()
    .vault;
    let (key, secret) = vault.create_access_key("sdk", Some(ALL)).unwrap();
    let listener =
        AwsListener::start("127.0.0.1:0", Arc::new(Mutex::new(vault)), Arc::new(|_| {})).unwrap();
    let endpoint = format!("http://{}", listener.local_addr());
    let credentials = Credentials::new(&key.id, secret.as_str(), None, None, "coffer-test");

    let sm = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::Config::builder()
            .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
            .endpoint_url(&endpoint)
            .credentials_provider(credentials.clone())
            .http_client(http_client())
            .build(),
    );
    let created = sm
        .create_secret()
        .name("sdk/db")
        .secret_string("from-the-rust-sdk")
        .send()
        .await
        .unwrap();
    assert_eq!(created.name(), Some("sdk/db"));
    let got = sm
        .get_secret_value()
        .secret_id("sdk/db")
        .send()
        .await
        .unwrap();
    assert_eq!(got.secret_string(), Some("from-the-rust-sdk"));
    assert_eq!(got.version_stages(), ["AWSCURRENT".to_owned()]);
    let put = sm
        .put_secret_value()
        .secret_id(created.arn().unwrap())
        .secret_string("second")
        .send()
        .await
        .unwrap();
    let versions = sm
        .list_secret_version_ids()
        .secret_id("sdk/db")
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), 2);
    assert!(put.version_id().is_some());
    let missing = sm
        .get_secret_value()
        .secret_id("sdk/missing")
        .send()
        .await
        .unwrap_err();
    assert!(
        missing
            .as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "{missing:?}"
    );

    // Replication with no paired region: refused in AWS's terms, nothing changed.
    let unpaired = sm
        .replicate_secret_to_regions()
        .secret_id("sdk/db")
        .add_replica_regions(
            aws_sdk_secretsmanager::types::ReplicaRegionType::builder()
                .region("eu-west-1")
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert!(
        unpaired
            .as_service_error()
            .is_some_and(|e| e.is_invalid_parameter_exception()),
        "{unpaired:?}"
    );
    let described = sm
        .describe_secret()
        .secret_id("sdk/db")
        .send()
        .await
        .unwrap();
    assert!(described.replication_status().is_empty(), "{described:?}");
    assert_eq!(described.primary_region(), Some("local-1"));
    let not_replica = sm
        .stop_replication_to_replica()
        .secret_id("sdk/db")
        .send()
        .await
        .unwrap_err();
    assert!(
        not_replica
            .as_service_error()
            .is_some_and(|e| e.is_invalid_request_exception()),
        "{not_replica:?}"
    );

    // A secret made again under its name gets a new ARN; the old one names nothing.
    let old_arn = created.arn().unwrap().to_owned();
    sm.delete_secret()
        .secret_id(&old_arn)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    let again = sm
        .create_secret()
        .name("sdk/db")
        .secret_string("made-again")
        .send()
        .await
        .unwrap();
    let new_arn = again.arn().unwrap();
    assert_ne!(new_arn, old_arn);
    assert_eq!(new_arn[..new_arn.len() - 7], old_arn[..old_arn.len() - 7]);
    let stale = sm
        .get_secret_value()
        .secret_id(&old_arn)
        .send()
        .await
        .unwrap_err();
    assert!(
        stale
            .as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "{stale:?}"
    );
    let partial = &new_arn[..new_arn.len() - 7];
    let by_partial = sm
        .get_secret_value()
        .secret_id(partial)
        .send()
        .await
        .unwrap();
    assert_eq!(by_partial.secret_string(), Some("made-again"));
    assert_eq!(by_partial.arn(), Some(new_arn));

    let kms = aws_sdk_kms::Client::from_conf(
        aws_sdk_kms::Config::builder()
            .region(aws_sdk_kms::config::Region::new("us-east-1"))
            .endpoint_url(&endpoint)
            .credentials_provider(credentials)
            .http_client(http_client())
            .build(),
    );
    let data_key = kms
        .generate_data_key()
        .key_id("alias/default")
        .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
        .encryption_context("app", "sdk")
        .send()
        .await
        .unwrap();
    let plain = data_key.plaintext().unwrap().as_ref().to_vec();
    assert_eq!(plain.len(), 32);
    let opened = kms
        .decrypt()
        .ciphertext_blob(data_key.ciphertext_blob().unwrap().clone())
        .encryption_context("app", "sdk")
        .send()
        .await
        .unwrap();
    assert_eq!(opened.plaintext().unwrap().as_ref(), plain.as_slice());
    let wrong = kms
        .decrypt()
        .ciphertext_blob(Blob::new(vec![1, 2, 3]))
        .send()
        .await
        .unwrap_err();
    assert!(
        wrong
            .as_service_error()
            .is_some_and(|e| e.is_invalid_ciphertext_exception()),
        "{wrong:?}"
    );
    drop(listener);
}
