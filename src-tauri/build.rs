/// Every IPC command the web view may call; `capabilities/default.json` grants exactly these.
const COMMANDS: &[&str] = &[
    "app_status",
    "init_vault",
    "unlock_vault",
    "recover_vault",
    "lock_vault",
    "change_pin",
    "note_activity",
    "list_secrets",
    "describe_secret",
    "create_secret",
    "put_secret_value",
    "update_secret",
    "move_label",
    "delete_secret",
    "restore_secret",
    "reveal_secret",
    "copy_secret",
    "generate_password",
    "list_keys",
    "create_key",
    "create_alias",
    "rotate_key",
    "key_rotation_status",
    "enable_key_rotation",
    "disable_key_rotation",
    "rewrap_key",
    "retire_key_version",
    "configure_rotation",
    "cancel_rotation",
    "rotate_secret",
    "rotation_history",
    "list_rotations",
    "preview_schedule",
    "audit_list",
    "audit_verify",
    "region_identity",
    "rename_region",
    "list_peers",
    "add_peer",
    "remove_peer",
    "ping_peer",
    "get_settings",
    "save_settings",
    "get_update_settings",
    "save_update_settings",
    "check_for_update",
    "download_update",
    "check_update_file",
    "install_update",
];

fn main() {
    let attributes = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(error) = tauri_build::try_build(attributes) {
        eprintln!("tauri build step failed: {error:#}");
        std::process::exit(1);
    }
}
