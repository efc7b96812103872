//! The app's preferences.

use super::Session;
use crate::error::AppResult;
use crate::settings::Settings;

#[tauri::command]
pub fn get_settings(session: Session<'_>) -> Settings {
    session.settings()
}

#[tauri::command]
pub fn save_settings(session: Session<'_>, settings: Settings) -> AppResult<Settings> {
    session.save_settings(settings)
}
