//! The public templates of the storage primary key and of sealed key objects.

use tss_esapi::attributes::ObjectAttributesBuilder;
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::structures::{
    Digest, EccParameter, EccPoint, KeyedHashScheme, Public, PublicBuilder,
    PublicEccParametersBuilder, PublicKeyedHashParameters, SymmetricDefinitionObject,
};

/// The storage primary key: the TCG "SRK" template for ECC (TCG TPM v2.0 Provisioning
/// Guidance): NIST P-256 restricted decryption key with AES-128-CFB for its children, SHA-256
/// name, and a unique field of 32 zero bytes for x and y.
///
/// The same template always yields the same key on the same TPM (the owner seed does not
/// change until the TPM is cleared), so it is recreated per connection instead of being
/// persisted. `noDA` is set because it has an empty auth value: its use must keep working while
/// the TPM is in dictionary-attack lockout.
pub(crate) fn storage_primary() -> Result<Public, tss_esapi::Error> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .with_restricted(true)
        .with_decrypt(true)
        .build()?;
    let parameters = PublicEccParametersBuilder::new_restricted_decryption_key(
        SymmetricDefinitionObject::AES_128_CFB,
        EccCurve::NistP256,
    )
    .build()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_ecc_parameters(parameters)
        .with_ecc_unique_identifier(EccPoint::new(
            EccParameter::try_from(vec![0u8; 32])?,
            EccParameter::try_from(vec![0u8; 32])?,
        ))
        .build()
}

/// A sealed data object holding a key-encryption key.
///
/// fixedTPM and fixedParent: it can never leave this TPM. No sensitiveDataOrigin: the caller
/// supplies the data. noDA clear: wrong auth values count towards dictionary-attack lockout.
/// Without a policy the auth value alone authorizes use (userWithAuth); with one (PCR binding)
/// only the policy does, and admin actions need it too (adminWithPolicy).
pub(crate) fn sealed_object(policy: Option<Digest>) -> Result<Public, tss_esapi::Error> {
    let bound = policy.is_some();
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(false)
        .with_user_with_auth(!bound)
        .with_admin_with_policy(bound)
        .with_no_da(false)
        .build()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::KeyedHash)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_auth_policy(policy.unwrap_or_default())
        .with_keyed_hash_parameters(PublicKeyedHashParameters::new(KeyedHashScheme::Null))
        .with_keyed_hash_unique_identifier(Digest::default())
        .build()
}
