//! A throwaway PostgreSQL cluster for the tests and benchmarks that run on the PostgreSQL
//! backend: made with the system's `initdb` and `pg_ctl` (PostgreSQL 15 or newer) in a
//! temporary folder, listening only on a socket in that folder. Each user gets a fresh
//! database copied from a template that already holds the schema. The tests share one cluster
//! per process, on tmpfs with no fsync; a benchmark makes a durable one on disk
//! (`Cluster::durable`), stopped when dropped.
//!
//! `initdb` refuses to run as root: as root, the cluster runs as the `postgres` user
//! (`runuser -u postgres --`). A watcher process stops the cluster and removes its folder once
//! this process is gone, however it ended (a test binary killed mid-run included); clusters
//! that a killed watcher left behind are removed at the next start.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::LazyLock;
use std::time::Duration;

/// The prefix of every cluster folder, followed by the owning process's id.
const FOLDER_PREFIX: &str = "rogeriq-test-pg-";
/// The database every test database is copied from.
const TEMPLATE: &str = "rogeriq_template";

pub struct Cluster {
    bin: PathBuf,
    folder: PathBuf,
    port: u16,
    /// Run the cluster's programs as `postgres` (we are root).
    as_postgres: bool,
}

static CLUSTER: LazyLock<Result<Cluster, String>> = LazyLock::new(|| Cluster::start(false));

/// The folder of the newest PostgreSQL (15 or newer) installed, if any: Debian's layout, then
/// `initdb` on the PATH.
pub fn binaries() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .filter(|(version, _)| *version >= 15)
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let found = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .ok()?;
    let path = String::from_utf8(found.stdout).ok()?;
    Path::new(path.trim()).parent().map(Path::to_path_buf)
}

/// The cluster of this process, started at the first call.
pub fn cluster() -> &'static Cluster {
    match &*CLUSTER {
        Ok(cluster) => cluster,
        Err(why) => panic!("the test PostgreSQL cluster did not start: {why}"),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

impl Cluster {
    /// A cluster of its own that syncs every commit to disk, as a production one does; stopped
    /// and removed when dropped.
    pub fn durable() -> Result<Cluster, String> {
        Cluster::start(true)
    }

    fn start(durable: bool) -> Result<Cluster, String> {
        let bin =
            binaries().ok_or("no PostgreSQL 15 or newer installed (apt-get install postgresql)")?;
        let parent = if Path::new("/dev/shm").is_dir() && !durable {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        remove_stale(&parent, &bin);
        let folder = parent.join(format!(
            "{FOLDER_PREFIX}{}-{}",
            std::process::id(),
            rogeriq::ids::random_alphanumeric(6)
        ));
        std::fs::create_dir(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
        let as_postgres = is_root();
        let cluster = Cluster {
            bin,
            port: 20_000 + (std::process::id() % 30_000) as u16,
            folder,
            as_postgres,
        };
        if as_postgres {
            cluster.run(
                "chown",
                &["-R", "postgres:postgres", &cluster.path_text("")],
                false,
            )?;
        }
        // The watcher first: whatever happens from here on, the folder goes with this process.
        cluster.watch()?;
        let data = cluster.path_text("data");
        cluster.run_pg(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        let unsafe_for_speed = if durable {
            ""
        } else {
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        };
        let options = format!(
            "-c listen_addresses='' -k {} -p {} {unsafe_for_speed} -c max_connections=400 \
             -c shared_buffers=128MB",
            cluster.folder.display(),
            cluster.port
        );
        let log = cluster.path_text("log");
        cluster.run_pg(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-o", &options, "-w", "start"],
        )?;
        cluster.admin(&format!("CREATE DATABASE {TEMPLATE}"))?;
        // The schema, made once by the store itself.
        let store = rogeriq::store::Store::open_at(
            &cluster.location(TEMPLATE),
            rogeriq::store::Limits::default(),
        )
        .map_err(|e| format!("the template's schema: {e}"))?;
        store
            .close(Duration::from_secs(10))
            .map_err(|e| format!("closing the template: {e}"))?;
        // Each copy makes a salt of its own when first opened, as a new database would.
        cluster.admin_in(TEMPLATE, "DELETE FROM secrets")?;
        Ok(cluster)
    }

    fn path_text(&self, name: &str) -> String {
        self.folder.join(name).display().to_string()
    }

    /// `program` (from the cluster's binaries) as the cluster's owner.
    fn run_pg(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let path = self.bin.join(program).display().to_string();
        self.run(&path, args, self.as_postgres)
    }

    fn run(&self, program: &str, args: &[&str], as_postgres: bool) -> Result<(), String> {
        let mut command = if as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--", program]);
            command
        } else {
            Command::new(program)
        };
        let out = command
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{program}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// A shell that waits for this process to end, then stops the cluster and removes its
    /// folder. It outlives a test binary that is killed.
    fn watch(&self) -> Result<(), String> {
        let stop = self.stop_command();
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {folder}",
            pid = std::process::id(),
            folder = self.folder.display()
        );
        Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(drop)
            .map_err(|e| format!("the cluster's watcher: {e}"))
    }

    /// The shell command that stops the cluster at once.
    fn stop_command(&self) -> String {
        let stop = format!(
            "{} -D {} stop -m immediate",
            self.bin.join("pg_ctl").display(),
            self.path_text("data")
        );
        if self.as_postgres {
            format!("runuser -u postgres -- {stop}")
        } else {
            stop
        }
    }

    /// pgbench's rate (transactions per second) for `script` on database `name`, with
    /// `clients` connections for `seconds`, statements prepared.
    pub fn pgbench(
        &self,
        name: &str,
        script: &Path,
        clients: usize,
        seconds: u64,
    ) -> Result<f64, String> {
        let clients = clients.to_string();
        let seconds = seconds.to_string();
        let out = Command::new(self.bin.join("pgbench"))
            .args(["-n", "-M", "prepared", "-U", "postgres", "-j", "2"])
            .arg("-h")
            .arg(&self.folder)
            .args(["-p", &self.port.to_string(), "-c", &clients, "-T", &seconds])
            .arg("-f")
            .arg(script)
            .arg(name)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("pgbench: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|line| line.strip_prefix("tps = "))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|tps| tps.parse().ok())
            .ok_or_else(|| format!("pgbench: {text}{}", String::from_utf8_lossy(&out.stderr)))
    }

    /// The URL of database `name`: the socket in the cluster's folder, user `postgres`.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://postgres@/{name}?host={}&port={}",
            self.folder.display(),
            self.port
        )
    }

    pub fn location(&self, name: &str) -> rogeriq::store::Location {
        rogeriq::store::Location::Postgres(rogeriq::store::postgres::Target {
            url: self.url(name),
            pool: 8,
        })
    }

    /// Runs `statement` in the `postgres` database.
    pub fn admin(&self, statement: &str) -> Result<(), String> {
        self.admin_in("postgres", statement)
    }

    /// Runs `statement` in database `name`.
    pub fn admin_in(&self, name: &str, statement: &str) -> Result<(), String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let url = self.url(name);
        runtime.block_on(async {
            let (client, connection) =
                tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .map_err(|e| format!("connecting to the test cluster: {e}"))?;
            let driver = tokio::spawn(connection);
            let done = client
                .batch_execute(statement)
                .await
                .map_err(|e| format!("{statement}: {e}"));
            drop(client);
            let _ = driver.await;
            done
        })
    }

    /// A new database holding the schema, copied from the template.
    pub fn new_database(&self) -> String {
        let name = format!("t_{}", rogeriq::ids::random_alphanumeric(12));
        self.admin(&format!(
            "CREATE DATABASE {name} TEMPLATE {TEMPLATE} STRATEGY FILE_COPY"
        ))
        .expect("a test database");
        name
    }

    /// A new database with nothing in it: the schema is for the server to make.
    pub fn empty_database(&self) -> String {
        let name = format!("e_{}", rogeriq::ids::random_alphanumeric(12));
        self.admin(&format!("CREATE DATABASE {name}"))
            .expect("an empty test database");
        name
    }

    /// Drops database `name`, closing what is still connected to it.
    pub fn drop_database(&self, name: &str) {
        if let Err(err) = self.admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")) {
            eprintln!("warning: {err}");
        }
    }
}

/// Stops and removes the clusters of processes that are gone (their watcher was killed too).
fn remove_stale(parent: &Path, bin: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(FOLDER_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let data = entry.path().join("data");
        let stop = format!(
            "{} -D {} stop -m immediate",
            bin.join("pg_ctl").display(),
            data.display()
        );
        let _ = Command::new("sh")
            .args(["-c", &format!("runuser -u postgres -- {stop} || {stop}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

impl Drop for Cluster {
    /// The tests' cluster lives as long as their process, and its watcher removes it; one made
    /// for a while (`durable`) goes now.
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .args(["-c", &format!("{} >/dev/null 2>&1", self.stop_command())])
            .status();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}
