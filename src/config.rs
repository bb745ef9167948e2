//! Settings, merged in one place: built-in defaults < TOML file < `ROGERIQ_*` environment
//! variables < command-line flags. Every key's environment variable is `ROGERIQ_` plus its path
//! in upper snake case (`[a] b_c` is `ROGERIQ_A_B_C`); config.toml.example documents each key.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address to bind, `host:port`; port 0 picks a free port.
    pub listen: String,
    /// Folder holding the data file; created if missing.
    pub data_dir: PathBuf,
    /// Secret for the admin API (at least 16 characters); empty disables the admin API.
    pub master_key: String,
    pub log_format: LogFormat,
    /// A tracing filter such as `info` or `rogeriq=debug`.
    pub log_level: String,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: u64,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            master_key: String::new(),
            log_format: LogFormat::Pretty,
            log_level: "info".into(),
            max_body_bytes: 1024 * 1024,
            workers: 0,
        }
    }
}

pub const ENV_PREFIX: &str = "ROGERIQ_";
const MIN_MASTER_KEY_CHARS: usize = 16;

impl Settings {
    /// Merges the layers. `env` looks up one environment variable; `flags` are `(key path,
    /// value)` pairs from the command line that were given.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        flags: &[(&str, toml::Value)],
    ) -> Result<Settings, String> {
        let defaults = toml::Table::try_from(Settings::default())
            .map_err(|e| format!("default settings: {e}"))?;
        let mut merged = defaults.clone();

        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
            let table: toml::Table = text
                .parse()
                .map_err(|e| format!("config file {}: {e}", path.display()))?;
            merge(&mut merged, table);
        }

        for (path, default) in leaves(&defaults) {
            let var = env_var_name(&path);
            if let Some(raw) = env(&var) {
                let value = parse_like(default, &raw).ok_or_else(|| {
                    format!("{var}={raw:?} is not a valid {}", default.type_str())
                })?;
                set_path(&mut merged, &path, value);
            }
        }

        for (path, value) in flags {
            let path: Vec<String> = path.split('.').map(str::to_owned).collect();
            set_path(&mut merged, &path, value.clone());
        }

        let settings: Settings = toml::Value::Table(merged)
            .try_into()
            .map_err(|e| format!("settings: {e}"))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), String> {
        if !self.master_key.is_empty() && self.master_key.chars().count() < MIN_MASTER_KEY_CHARS {
            return Err(format!(
                "master_key must be at least {MIN_MASTER_KEY_CHARS} characters"
            ));
        }
        if self.max_body_bytes == 0 {
            return Err("max_body_bytes must be at least 1".into());
        }
        Ok(())
    }

    pub fn data_file(&self) -> PathBuf {
        self.data_dir.join("rogeriq.redb")
    }

    /// Every key path of the settings, for documentation checks.
    pub fn key_paths() -> Vec<String> {
        toml::Table::try_from(Settings::default())
            .map(|t| leaves(&t).into_iter().map(|(p, _)| p.join(".")).collect())
            .unwrap_or_default()
    }
}

pub fn env_var_name(path: &[String]) -> String {
    format!("{ENV_PREFIX}{}", path.join("_").to_uppercase())
}

fn merge(into: &mut toml::Table, from: toml::Table) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(toml::Value::Table(existing)), toml::Value::Table(incoming)) => {
                merge(existing, incoming)
            }
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

fn leaves(table: &toml::Table) -> Vec<(Vec<String>, &toml::Value)> {
    let mut out = Vec::new();
    for (key, value) in table {
        match value {
            toml::Value::Table(inner) => {
                for (mut path, leaf) in leaves(inner) {
                    path.insert(0, key.clone());
                    out.push((path, leaf));
                }
            }
            leaf => out.push((vec![key.clone()], leaf)),
        }
    }
    out
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(inner) = entry {
                set_path(inner, rest, value);
            }
        }
    }
}

/// Reads an environment string as the same TOML type as the key's default.
fn parse_like(default: &toml::Value, raw: &str) -> Option<toml::Value> {
    match default {
        toml::Value::String(_) => Some(toml::Value::String(raw.to_owned())),
        toml::Value::Integer(_) => raw.trim().parse().ok().map(toml::Value::Integer),
        toml::Value::Boolean(_) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(toml::Value::Boolean(true)),
            "false" | "0" | "no" => Some(toml::Value::Boolean(false)),
            _ => None,
        },
        toml::Value::Float(_) => raw.trim().parse().ok().map(toml::Value::Float),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_stand_alone() {
        assert_eq!(
            Settings::load(None, no_env, &[]).unwrap(),
            Settings::default()
        );
    }

    #[test]
    fn layers_override_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:1\"\nlog_level = \"debug\"\nmax_body_bytes = 10\n",
        )
        .unwrap();
        let env: HashMap<&str, &str> = [
            ("ROGERIQ_LISTEN", "0.0.0.0:2"),
            ("ROGERIQ_MAX_BODY_BYTES", "20"),
        ]
        .into();
        let flags = [("listen", toml::Value::String("0.0.0.0:3".into()))];
        let s = Settings::load(Some(&file), |k| env.get(k).map(|v| v.to_string()), &flags).unwrap();
        assert_eq!(s.listen, "0.0.0.0:3");
        assert_eq!(s.max_body_bytes, 20);
        assert_eq!(s.log_level, "debug");
    }

    #[test]
    fn bad_values_are_reported() {
        let env = |k: &str| (k == "ROGERIQ_MAX_BODY_BYTES").then(|| "lots".to_string());
        assert!(
            Settings::load(None, env, &[])
                .unwrap_err()
                .contains("ROGERIQ_MAX_BODY_BYTES")
        );
        let short = |k: &str| (k == "ROGERIQ_MASTER_KEY").then(|| "short".to_string());
        assert!(
            Settings::load(None, short, &[])
                .unwrap_err()
                .contains("master_key")
        );
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        assert!(Settings::load(Some(&file), no_env, &[]).is_err());
    }

    #[test]
    fn example_file_documents_every_key_with_its_default() {
        let text = include_str!("../config.toml.example");
        let uncommented: String = text
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|r| r.contains(" = "))
                    .unwrap_or(l)
            })
            .collect::<Vec<_>>()
            .join("\n");
        let table: toml::Table = uncommented.parse().unwrap();
        let parsed: Settings = toml::Value::Table(table).try_into().unwrap();
        assert_eq!(parsed, Settings::default());
        for key in Settings::key_paths() {
            let var = env_var_name(&key.split('.').map(str::to_owned).collect::<Vec<_>>());
            assert!(
                text.contains(&var),
                "config.toml.example does not name {var}"
            );
        }
    }
}
