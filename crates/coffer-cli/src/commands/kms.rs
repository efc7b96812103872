//! `coffer kms …`: envelope encryption for applications.

use coffer_core::service::{Blob, Request, Response, WireValue};
use coffer_core::vault::envelope::{self, EncryptionContext};
use coffer_core::SecretValue;
use serde_json::json;
use zeroize::Zeroizing;

use super::{pairs, unexpected, Env};
use crate::cli::KmsCommand;
use crate::failure::Failure;
use crate::input;
use crate::output;

fn context(items: &[String]) -> Result<EncryptionContext, Failure> {
    pairs(items, "context pair")
}

fn ciphertext(path: &std::path::Path) -> Result<Blob, Failure> {
    let bytes = input::blob(path, 64 * 1024)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Failure::usage("the ciphertext must be base64 text"))?;
    Ok(Blob(text.trim().to_owned()))
}

fn print_ciphertext(blob: &Blob) -> Result<(), Failure> {
    output::raw(format!("{}\n", blob.0).as_bytes(), false)
}

pub fn run(env: &Env, command: KmsCommand) -> Result<(), Failure> {
    if let KmsCommand::GenerateRandom { number_of_bytes } = &command {
        let bytes = envelope::generate_random(*number_of_bytes)?;
        let encoded = Zeroizing::new(Blob::encode(&bytes).0 + "\n");
        return output::raw(encoded.as_bytes(), false);
    }
    let mut backend = env.backend()?;
    match command {
        KmsCommand::Encrypt {
            key,
            plaintext_file,
            context: ctx,
        } => {
            let plain = input::blob(&plaintext_file, envelope::MAX_ENCRYPT_LEN)?;
            let plaintext = WireValue::from_value(&SecretValue::Binary(plain));
            match backend.call(Request::Encrypt {
                key,
                plaintext,
                context: context(&ctx.pairs)?,
            })? {
                Response::Ciphertext(blob) => print_ciphertext(&blob),
                other => Err(unexpected(other)),
            }
        }
        KmsCommand::Decrypt {
            ciphertext_file,
            context: ctx,
        } => {
            let request = Request::Decrypt {
                ciphertext: ciphertext(&ciphertext_file)?,
                context: context(&ctx.pairs)?,
            };
            match backend.call(request)? {
                Response::Plaintext { plaintext, .. } => {
                    output::raw(plaintext.to_value()?.as_bytes(), false)
                }
                other => Err(unexpected(other)),
            }
        }
        KmsCommand::ReEncrypt {
            ciphertext_file,
            destination_key,
            source_context,
            destination_context,
        } => {
            let request = Request::ReEncrypt {
                ciphertext: ciphertext(&ciphertext_file)?,
                source_context: context(&source_context)?,
                destination_key,
                destination_context: context(&destination_context)?,
            };
            match backend.call(request)? {
                Response::Ciphertext(blob) => print_ciphertext(&blob),
                other => Err(unexpected(other)),
            }
        }
        KmsCommand::GenerateDataKey {
            key,
            number_of_bytes,
            context: ctx,
        } => data_key(
            &mut backend,
            key,
            number_of_bytes,
            context(&ctx.pairs)?,
            true,
        ),
        KmsCommand::GenerateDataKeyWithoutPlaintext {
            key,
            number_of_bytes,
            context: ctx,
        } => data_key(
            &mut backend,
            key,
            number_of_bytes,
            context(&ctx.pairs)?,
            false,
        ),
        KmsCommand::GenerateRandom { .. } => Ok(()),
    }
}

/// Prints a data key as JSON: key id, ciphertext and (if asked for) plaintext, in base64.
fn data_key(
    backend: &mut super::Backend,
    key: String,
    bytes: usize,
    context: EncryptionContext,
    with_plaintext: bool,
) -> Result<(), Failure> {
    match backend.call(Request::GenerateDataKey {
        key,
        bytes,
        context,
        with_plaintext,
    })? {
        Response::DataKey(material) => {
            let mut body =
                json!({ "key_id": material.key_id, "ciphertext_blob": material.ciphertext.0 });
            if let Some(plaintext) = &material.plaintext {
                body["plaintext"] = json!(plaintext.base64);
            }
            let text = Zeroizing::new(format!("{body:#}\n"));
            if let Some(serde_json::Value::String(p)) = body.get_mut("plaintext") {
                zeroize::Zeroize::zeroize(p);
            }
            output::raw(text.as_bytes(), false)
        }
        other => Err(unexpected(other)),
    }
}
