//! The AWS-compatible API the app serves from its own unlocked vault: started when the
//! vault unlocks with the API turned on in Settings, stopped when it locks or is turned
//! off. The server, its checks and its rules are `coffer-aws-server`'s; this only decides
//! when it runs.

use std::sync::{Mutex, MutexGuard};

use coffer_aws_server::{AwsListener, SessionVault};

use crate::error::{AppError, AppResult};
use crate::settings::AwsApiSettings;

#[derive(Default)]
pub struct AwsApi {
    state: Mutex<Running>,
}

#[derive(Default)]
struct Running {
    listener: Option<AwsListener>,
    /// The address it was asked to listen on, to notice a changed setting.
    address: String,
    /// Why it could not start the last time it tried (a taken port).
    problem: Option<String>,
}

impl AwsApi {
    fn state(&self) -> MutexGuard<'_, Running> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts or stops the listener so that it runs exactly while the vault is unlocked
    /// and the API is on. Never called with the vault's mutex held: stopping waits for
    /// requests in flight, which take that mutex.
    pub fn sync(&self, vault: &SessionVault, settings: &AwsApiSettings, unlocked: bool) {
        let want = unlocked && settings.enabled;
        let mut state = self.state();
        let matches = state.listener.is_some() && state.address == settings.address;
        if want && matches {
            return;
        }
        let stopped = state.listener.take();
        if !want {
            state.problem = None;
            drop(state);
            drop(stopped);
            return;
        }
        drop(stopped);
        match start(&settings.address, vault) {
            Ok(listener) => {
                state.listener = Some(listener);
                state.problem = None;
            }
            Err(error) => state.problem = Some(error.message),
        }
        state.address = settings.address.clone();
    }

    /// Checks that `settings` can be served, by binding them now, before they are saved:
    /// a refused address (not loopback, taken) is an error and nothing changes. The
    /// running listener is kept when the address is the same.
    pub fn try_apply(
        &self,
        vault: &SessionVault,
        settings: &AwsApiSettings,
        unlocked: bool,
    ) -> AppResult<()> {
        if !settings.enabled || !unlocked {
            return Ok(());
        }
        let mut state = self.state();
        if state.listener.is_some() && state.address == settings.address {
            return Ok(());
        }
        let listener = start(&settings.address, vault)?;
        let old = state.listener.replace(listener);
        state.address = settings.address.clone();
        state.problem = None;
        drop(state);
        drop(old);
        Ok(())
    }

    /// Where it listens now, as `IP:port`.
    pub fn listening(&self) -> Option<String> {
        let state = self.state();
        state.listener.as_ref().map(|l| l.local_addr().to_string())
    }

    pub fn problem(&self) -> Option<String> {
        self.state().problem.clone()
    }

    pub fn stop(&self) {
        let stopped = self.state().listener.take();
        drop(stopped);
    }
}

fn start(address: &str, vault: &SessionVault) -> AppResult<AwsListener> {
    // The server logs what it refused (an unknown access key, a bad signature): never a
    // secret, and the app's stderr is where the user looks for such lines.
    let log: coffer_aws_server::Log =
        std::sync::Arc::new(|line| eprintln!("coffer: aws api: {line}"));
    AwsListener::start(address.trim(), std::sync::Arc::clone(vault), log)
        .map_err(|error| AppError::invalid("address", error.to_string()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn settings(enabled: bool, address: &str) -> AwsApiSettings {
        AwsApiSettings {
            enabled,
            address: address.to_owned(),
        }
    }

    #[test]
    fn it_runs_only_while_unlocked_and_turned_on() {
        let vault: SessionVault = Arc::new(Mutex::new(None));
        let api = AwsApi::default();
        api.sync(&vault, &settings(true, "127.0.0.1:0"), false);
        assert_eq!(api.listening(), None);
        api.sync(&vault, &settings(true, "127.0.0.1:0"), true);
        let address = api.listening().expect("listening while unlocked");
        assert!(std::net::TcpStream::connect(&address).is_ok());
        api.sync(&vault, &settings(false, "127.0.0.1:0"), true);
        assert_eq!(api.listening(), None);
        // The port is free again. Other tests of this binary bind ephemeral ports in
        // parallel and may briefly get the same one, so a connection is retried until
        // refused rather than asserted refused once; a listener still open fails here.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(&address).is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "{address} still accepts connections after the API was turned off"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    #[test]
    fn a_refused_address_is_an_error_at_the_field_and_nothing_runs() {
        let vault: SessionVault = Arc::new(Mutex::new(None));
        let api = AwsApi::default();
        let error = api
            .try_apply(&vault, &settings(true, "0.0.0.0:4566"), true)
            .unwrap_err();
        assert_eq!(error.field.as_deref(), Some("address"));
        assert!(error.message.contains("loopback"), "{}", error.message);
        assert_eq!(api.listening(), None);

        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let taken = taken.local_addr().unwrap().to_string();
        api.sync(&vault, &settings(true, &taken), true);
        assert_eq!(api.listening(), None);
        assert!(api.problem().unwrap().contains(&taken));
    }
}
