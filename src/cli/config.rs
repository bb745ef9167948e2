//! Where the CLI's key, organisation, project and server come from (docs/cli.md): a flag,
//! else an environment variable, else `~/.rogeriq/config.json` (mode 0600), else a default.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cli::error::{CliError, CliResult};

pub const ENV_API_KEY: &str = "RIQ_API_KEY";
pub const ENV_ORG: &str = "RIQ_ORG_ID";
pub const ENV_PROJECT: &str = "RIQ_PROJECT_ID";
pub const ENV_API_BASE: &str = "RIQ_API_BASE";
/// The server's own variable for the admin API's secret, so one shell sets up both.
pub const ENV_MASTER_KEY: &str = "ROGERIQ_MASTER_KEY";
pub const DEFAULT_API_BASE: &str = "http://127.0.0.1:8080";

/// The config file, in the documented layout (camelCase keys).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
}

/// `$HOME/.rogeriq/config.json`; `None` when `HOME` is unset or empty.
pub fn config_path(env: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    env("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| Path::new(&home).join(".rogeriq").join("config.json"))
}

impl ConfigFile {
    /// The file's settings; a missing file holds none.
    pub fn load(path: &Path) -> CliResult<ConfigFile> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ConfigFile::default());
            }
            Err(err) => {
                return Err(CliError::usage(format!(
                    "cannot read {}: {err}",
                    path.display()
                )));
            }
        };
        serde_json::from_str(&text).map_err(|err| {
            CliError::usage(format!(
                "{} is not a valid config file ({err}); fix it or run `rogeriq auth logout`",
                path.display()
            ))
        })
    }

    /// Writes the file readable by its owner only (0600, in a 0700 folder). It is written
    /// beside its final name and renamed over it, so a reader never sees half a file and the
    /// secret is never briefly readable by others.
    pub fn save(&self, path: &Path) -> CliResult<()> {
        let fail = |err: std::io::Error| {
            CliError::usage(format!("cannot write {}: {err}", path.display()))
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(fail)?;

        let temp = dir.join(format!(".config.json.{}", std::process::id()));
        let _ = fs::remove_file(&temp);
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let text = serde_json::to_string_pretty(self)
            .map_err(|err| CliError::usage(format!("cannot encode the config: {err}")))?;
        let written = options.open(&temp).and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()
        });
        if let Err(err) = written.and_then(|()| fs::rename(&temp, path)) {
            let _ = fs::remove_file(&temp);
            return Err(fail(err));
        }
        Ok(())
    }
}

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    ConfigFile,
    Default,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::Env => "env",
            Source::ConfigFile => "config file",
            Source::Default => "default",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub value: String,
    pub source: Source,
}

/// The first of flag, environment variable and config file that holds a non-empty value.
fn pick(flag: Option<&str>, env: Option<String>, file: Option<&str>) -> Option<Setting> {
    let non_empty = |v: &str| !v.trim().is_empty();
    if let Some(value) = flag.filter(|v| non_empty(v)) {
        return Some(Setting {
            value: value.to_string(),
            source: Source::Flag,
        });
    }
    if let Some(value) = env.filter(|v| non_empty(v)) {
        return Some(Setting {
            value,
            source: Source::Env,
        });
    }
    file.filter(|v| non_empty(v)).map(|value| Setting {
        value: value.to_string(),
        source: Source::ConfigFile,
    })
}

/// The flags that can override the environment and the config file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub api_key: Option<String>,
    pub org: Option<String>,
    pub project: Option<String>,
    pub api_base: Option<String>,
    pub master_key: Option<String>,
}

/// Every setting, resolved.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub api_key: Option<Setting>,
    pub org: Option<Setting>,
    pub project: Option<Setting>,
    pub api_base: Setting,
    /// Flag or `ROGERIQ_MASTER_KEY` only: the master key is never stored in the file.
    pub master_key: Option<Setting>,
    /// The config file's path, when `HOME` is known.
    pub config_path: Option<PathBuf>,
}

impl Resolved {
    pub fn resolve(
        flags: &Overrides,
        env: &impl Fn(&str) -> Option<String>,
        file: &ConfigFile,
        config_path: Option<PathBuf>,
    ) -> Resolved {
        let api_key = pick(
            flags.api_key.as_deref(),
            env(ENV_API_KEY),
            file.api_key.as_deref(),
        );
        // The file's organisation was stored with the file's key by `auth login`, which checked
        // that they belong together; a key given by flag or environment may belong elsewhere,
        // and then its own organisation is used unless one is given the same way.
        let file_org = file.org_id.as_deref().filter(|_| {
            api_key
                .as_ref()
                .is_none_or(|k| k.source == Source::ConfigFile)
        });
        Resolved {
            api_key,
            org: pick(flags.org.as_deref(), env(ENV_ORG), file_org),
            project: pick(
                flags.project.as_deref(),
                env(ENV_PROJECT),
                file.project_id.as_deref(),
            ),
            api_base: pick(
                flags.api_base.as_deref(),
                env(ENV_API_BASE),
                file.api_base.as_deref(),
            )
            .unwrap_or(Setting {
                value: DEFAULT_API_BASE.into(),
                source: Source::Default,
            }),
            master_key: pick(flags.master_key.as_deref(), env(ENV_MASTER_KEY), None),
            config_path,
        }
    }
}

/// The part of a key that may be shown: at most 12 characters (`riq_` and eight of the key
/// id, as the server's `prefix` field) and never more than a third of it.
pub fn key_prefix(key: &str) -> String {
    let shown = (key.chars().count() / 3).min(12);
    key.chars().take(shown).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn file() -> ConfigFile {
        ConfigFile {
            api_key: Some("riq_file".into()),
            api_base: Some("http://file".into()),
            org_id: Some("org_file".into()),
            project_id: Some("prj_file".into()),
        }
    }

    #[test]
    fn flags_beat_env_beat_the_file() {
        let flags = Overrides {
            api_key: Some("riq_flag".into()),
            ..Overrides::default()
        };
        let env = env_of(&[("RIQ_API_KEY", "riq_env"), ("RIQ_ORG_ID", "org_env")]);
        let r = Resolved::resolve(&flags, &env, &file(), None);
        assert_eq!(r.api_key.unwrap().source, Source::Flag);
        assert_eq!(
            r.org.unwrap(),
            Setting {
                value: "org_env".into(),
                source: Source::Env
            }
        );
        assert_eq!(r.project.unwrap().value, "prj_file");
        assert_eq!(r.api_base.value, "http://file");
        assert!(r.master_key.is_none());
    }

    #[test]
    fn the_files_org_goes_with_the_files_key() {
        let env = env_of(&[("RIQ_API_KEY", "riq_env")]);
        let r = Resolved::resolve(&Overrides::default(), &env, &file(), None);
        assert!(r.org.is_none());
        assert_eq!(r.project.unwrap().value, "prj_file");
        let r = Resolved::resolve(&Overrides::default(), &env_of(&[]), &file(), None);
        assert_eq!(r.org.unwrap().value, "org_file");
    }

    #[test]
    fn empty_values_count_as_absent_and_the_base_has_a_default() {
        let flags = Overrides {
            org: Some(String::new()),
            ..Overrides::default()
        };
        let env = env_of(&[("RIQ_ORG_ID", " "), ("ROGERIQ_MASTER_KEY", "m")]);
        let r = Resolved::resolve(&flags, &env, &ConfigFile::default(), None);
        assert!(r.org.is_none() && r.api_key.is_none());
        assert_eq!(r.api_base.value, DEFAULT_API_BASE);
        assert_eq!(r.api_base.source, Source::Default);
        assert_eq!(r.master_key.unwrap().source, Source::Env);
    }

    #[test]
    fn the_shown_prefix_is_short() {
        assert_eq!(
            key_prefix("riq_abcdefghijkl_0123456789abcdefghijklmnopqrstuv"),
            "riq_abcdefgh"
        );
        assert_eq!(key_prefix("riq_x"), "r");
        assert_eq!(key_prefix(""), "");
    }

    #[test]
    fn the_file_uses_the_documented_keys() {
        let text = serde_json::to_string(&file()).unwrap();
        assert_eq!(
            text,
            r#"{"apiKey":"riq_file","apiBase":"http://file","orgId":"org_file","projectId":"prj_file"}"#
        );
    }
}
