//! Coffer's desktop app: a thin Tauri shell over [`coffer_core::Vault`].
//!
//! The vault lives in managed state ([`session::Session`]); commands ([`commands`]) parse,
//! call the engine on a blocking thread, and map errors ([`error::AppError`]). Nothing here
//! decides a rule about secrets: that is the engine's job.

mod aws_api;
mod clipboard;
mod commands;
mod desktop_signals;
mod error;
mod file_picker;
mod locking;
mod peer_listener;
mod scheduler;
mod session;
mod settings;
pub mod tpm_backend;
mod updates;

use std::sync::Arc;

use tauri::{Manager, RunEvent};

use crate::session::{Session, SharedSession};

pub use error::AppError;

pub fn run() {
    // The app holds unsealed keys while unlocked: no core dumps, no same-user debugger.
    if let Err(error) = coffer_core::process::harden() {
        eprintln!("coffer: warning: cannot disable core dumps ({error}); continuing");
    }
    // The TSS libraries print to stderr on their own; Coffer reports errors itself.
    if std::env::var_os("TSS2_LOG").is_none() {
        std::env::set_var("TSS2_LOG", "all+NONE");
    }
    let app = tauri::Builder::default()
        // Updates only from where the user points Settings (see `updates`); the web view
        // has no permission to call the plugin, only Coffer's own update commands.
        .plugin(tauri_plugin_updater::Builder::new().build())
        .manage(updates::UpdateState::default())
        .setup(|app| {
            let tpm = tpm_backend::TpmBackend::select(&tpm_backend::data_dir());
            let session: SharedSession = Arc::new(Session::new(
                coffer_core::default_vault_path(),
                settings::settings_path(),
                tpm,
            ));
            locking::spawn_watcher(app.handle().clone(), Arc::clone(&session));
            desktop_signals::spawn(app.handle().clone(), Arc::clone(&session));
            scheduler::spawn(app.handle().clone(), Arc::clone(&session));
            session.serve_cli();
            app.manage(session);
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::lifecycle::app_status,
            commands::lifecycle::init_vault,
            commands::lifecycle::unlock_vault,
            commands::lifecycle::recover_vault,
            commands::lifecycle::lock_vault,
            commands::lifecycle::change_pin,
            commands::lifecycle::note_activity,
            commands::secrets::list_secrets,
            commands::secrets::describe_secret,
            commands::secrets::create_secret,
            commands::secrets::put_secret_value,
            commands::secrets::update_secret,
            commands::secrets::move_label,
            commands::secrets::delete_secret,
            commands::secrets::restore_secret,
            commands::values::reveal_secret,
            commands::values::copy_secret,
            commands::values::generate_password,
            commands::keys::list_keys,
            commands::keys::create_key,
            commands::keys::create_alias,
            commands::keys::rotate_key,
            commands::keys::key_rotation_status,
            commands::keys::enable_key_rotation,
            commands::keys::disable_key_rotation,
            commands::keys::rewrap_key,
            commands::keys::retire_key_version,
            commands::rotation::configure_rotation,
            commands::rotation::cancel_rotation,
            commands::rotation::rotate_secret,
            commands::rotation::rotation_history,
            commands::rotation::list_rotations,
            commands::rotation::preview_schedule,
            commands::audit::audit_list,
            commands::audit::audit_verify,
            commands::regions::region_identity,
            commands::regions::rename_region,
            commands::regions::list_peers,
            commands::regions::add_peer,
            commands::regions::remove_peer,
            commands::regions::ping_peer,
            commands::regions::watch_peers,
            commands::regions::export_region_bundle,
            commands::regions::import_region_bundle,
            commands::regions::import_region_ack,
            commands::replication::replicate_secret,
            commands::replication::remove_secret_region,
            commands::replication::promote_secret,
            commands::replication::watch_secret_replication,
            commands::peer_listener::peer_listener_status,
            commands::peer_listener::configure_peer_listener,
            commands::lifecycle::unlock_vault_unattended,
            commands::team::team_show,
            commands::team::watch_team,
            commands::team::team_create,
            commands::team::team_invite,
            commands::team::team_join,
            commands::team::team_share,
            commands::team::team_unshare,
            commands::team::team_remove,
            commands::team::team_exposures,
            commands::access_keys::list_access_keys,
            commands::access_keys::create_access_key,
            commands::access_keys::set_access_key_enabled,
            commands::access_keys::delete_access_key,
            commands::aws_api::aws_api_status,
            commands::aws_api::configure_aws_api,
            commands::aws_api::set_aws_account_id,
            commands::settings::get_settings,
            commands::settings::save_settings,
            commands::updates::get_update_settings,
            commands::updates::save_update_settings,
            commands::updates::check_for_update,
            commands::updates::download_update,
            commands::updates::check_update_file,
            commands::updates::install_update,
        ])
        .build(tauri::generate_context!());
    let app = match app {
        Ok(app) => app,
        Err(error) => {
            eprintln!("coffer: the app could not start: {error}");
            std::process::exit(1);
        }
    };
    app.run(|handle, event| {
        if let RunEvent::Exit = event {
            if let Some(session) = handle.try_state::<SharedSession>() {
                let _ = session.lock();
                // A copied value must not outlive the app on the clipboard.
                session.clipboard.clear_now_if_ours();
                session.tpm.shutdown();
            }
        }
    });
}
