//! [`PostgresHarness`]: a throwaway PostgreSQL server (Debian's `postgresql` binaries) on a free
//! 127.0.0.1 port, its cluster in a temp dir, stopped on drop.
//!
//! `initdb` and `postgres` refuse to run as root, and tests often do (containers, CI): then the
//! temp dir is given to the `postgres` system user (or `nobody`) and the server runs as that
//! user. The child is the server process itself (the uid is switched by `Command::uid`, not by a
//! `runuser` wrapper), so the PID the harness holds is the one it stops. `PG*` variables are
//! removed from every child's environment so a developer's shell cannot redirect the tests.

use std::fs::{self, File};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long the server gets to accept connections after spawning. It is usually ready in
/// ~200 ms; 30 s leaves room for a loaded CI machine without hanging a test forever.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `Drop` waits for the server to exit after `pg_ctl stop -m immediate` before killing it.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts with a fresh port when the one we picked was taken in between (we learn a free
/// port by binding and releasing it, and someone may grab it).
const START_ATTEMPTS: usize = 3;
/// Where Debian installs one directory per major version (`/usr/lib/postgresql/15/bin`).
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";
/// Overrides the directory holding `initdb`, `postgres`, `pg_ctl`, `pg_isready` and `createdb`.
pub const POSTGRES_BIN_ENV: &str = "GANTRY_POSTGRES_BIN";
/// The superuser `initdb` creates, and the database created for the tests.
const USER: &str = "gantry";
/// Who runs the server when the tests run as root, in order of preference.
const UNPRIVILEGED_USERS: [&str; 2] = ["postgres", "nobody"];

/// What went wrong while starting a throwaway PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// The server binaries are not installed.
    #[error(
        "PostgreSQL server binaries not found (looked for {looked}); install Debian's postgresql (scripts/test.sh does)"
    )]
    Missing {
        /// Where they were looked for.
        looked: String,
    },
    /// A file or process operation failed; `context` says which.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A helper program (`initdb`, `createdb`) exited with an error.
    #[error("{command} failed ({status}):\n{output}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed.
        output: String,
    },
    /// Running as root, and no unprivileged user to run the server as.
    #[error("initdb refuses to run as root and none of {UNPRIVILEGED_USERS:?} is in /etc/passwd")]
    NoUser,
    /// The server started but did not accept connections, or exited.
    #[error("postgres did not start: {reason}\n--- postgres log (tail) ---\n{log_tail}")]
    Start {
        /// What was observed.
        reason: String,
        /// The end of the server's log.
        log_tail: String,
    },
}

type Result<T> = std::result::Result<T, PostgresError>;

fn io<T>(result: std::io::Result<T>, context: impl FnOnce() -> String) -> Result<T> {
    result.map_err(|source| PostgresError::Io {
        context: context(),
        source,
    })
}

/// A running PostgreSQL server with a database `gantry` owned by superuser `gantry`, trusting
/// every connection from 127.0.0.1. Dropping it stops exactly that server.
#[derive(Debug)]
pub struct PostgresHarness {
    child: Option<Child>,
    port: u16,
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    /// (uid, gid) the server runs as when the tests run as root.
    run_as: Option<(u32, u32)>,
    dir: TempDir,
}

impl PostgresHarness {
    /// Creates a cluster in a temp dir, starts it on a free port and creates database `gantry`.
    pub fn start() -> Result<PostgresHarness> {
        let bin = find_bin()?;
        let run_as = if effective_uid()? == 0 {
            Some(unprivileged_user()?)
        } else {
            None
        };
        let dir = io(
            tempfile::Builder::new()
                .prefix("gantry-postgres-")
                .tempdir(),
            || "creating the postgres temp dir".to_string(),
        )?;
        if let Some((uid, gid)) = run_as {
            io(
                std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)),
                || format!("giving {} to uid {uid}", dir.path().display()),
            )?;
        }
        let data = dir.path().join("data");
        let mut initdb = command(&bin.join("initdb"), dir.path(), run_as);
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "-A", "trust", "-E", "UTF8", "--no-locale"])
            // The cluster is thrown away: no need to wait for the disk.
            .arg("--no-sync");
        run(&mut initdb)?;

        let log = dir.path().join("postgres.log");
        let mut last_err = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let mut child = spawn(&bin, &data, dir.path(), port, &log, run_as)?;
            match wait_ready(&mut child, &bin, port, &log) {
                Ok(()) => {
                    let harness = PostgresHarness {
                        child: Some(child),
                        port,
                        bin,
                        data,
                        log,
                        run_as,
                        dir,
                    };
                    harness.create_database(USER)?;
                    return Ok(harness);
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let retry = tail(&log).contains("could not bind");
                    last_err = Some(e);
                    if !retry {
                        break;
                    }
                }
            }
        }
        Err(last_err.unwrap_or_else(|| PostgresError::Start {
            reason: "no start attempt was made".to_string(),
            log_tail: String::new(),
        }))
    }

    /// `postgres://gantry@127.0.0.1:PORT/gantry`.
    pub fn url(&self) -> String {
        self.database_url(USER)
    }

    /// The URL of database `name` on this server (which [`create_database`](Self::create_database) makes).
    pub fn database_url(&self, name: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates an empty database `name` and returns its URL: one server, a fresh schema per scenario.
    pub fn create_database(&self, name: &str) -> Result<String> {
        let mut createdb = command(&self.bin.join("createdb"), self.dir.path(), self.run_as);
        createdb
            .args(["-h", "127.0.0.1", "-U", USER, "-p"])
            .arg(self.port.to_string())
            .arg(name);
        run(&mut createdb)?;
        Ok(self.database_url(name))
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }

    /// The temp dir holding the cluster, socket and log (removed on drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server now (same as dropping it).
    pub fn stop(self) {}
}

impl Drop for PostgresHarness {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Immediate shutdown: pg_ctl signals the postmaster named in this cluster's
        // postmaster.pid (our child) and the postmaster ends its backends, which a plain kill of
        // the postmaster would leave behind until they notice.
        let mut stop = command(&self.bin.join("pg_ctl"), self.dir.path(), self.run_as);
        stop.arg("stop")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = stop.status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Exactly our child, by its handle; wait() reaps it so no zombie is left.
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The `bin` directory of the newest PostgreSQL major version installed (or the override).
fn find_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(POSTGRES_BIN_ENV) {
        let p = PathBuf::from(p);
        return if p.join("initdb").is_file() {
            Ok(p)
        } else {
            Err(PostgresError::Missing {
                looked: format!("{}/initdb, from {POSTGRES_BIN_ENV}", p.display()),
            })
        };
    }
    let newest = fs::read_dir(DEBIAN_ROOT)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            // Major versions are numbers (9.6, 15, 17); sort them as numbers, not text.
            let name = entry.file_name().to_string_lossy().into_owned();
            let major: Vec<u32> = name
                .split('.')
                .map(str::parse)
                .collect::<std::result::Result<_, _>>()
                .ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .max();
    newest.map(|(_, bin)| bin).ok_or(PostgresError::Missing {
        looked: format!("{DEBIAN_ROOT}/*/bin/initdb"),
    })
}

/// This process's effective uid, from `/proc/self/status` (no `libc`: the crate forbids unsafe).
fn effective_uid() -> Result<u32> {
    let status = io(fs::read_to_string("/proc/self/status"), || {
        "reading /proc/self/status to learn the effective uid".to_string()
    })?;
    // "Uid:\t<real>\t<effective>\t<saved>\t<fs>"
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
        .ok_or_else(|| PostgresError::Io {
            context: "reading the effective uid".to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "no Uid line in /proc/self/status",
            ),
        })
}

/// (uid, gid) of the first of [`UNPRIVILEGED_USERS`] in `/etc/passwd`.
fn unprivileged_user() -> Result<(u32, u32)> {
    let passwd = io(fs::read_to_string("/etc/passwd"), || {
        "reading /etc/passwd".to_string()
    })?;
    UNPRIVILEGED_USERS
        .iter()
        .find_map(|user| {
            passwd.lines().find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                if fields.first() != Some(user) {
                    return None;
                }
                Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?))
            })
        })
        .ok_or(PostgresError::NoUser)
}

/// A command run from `cwd` (the temp dir: the unprivileged user may not be able to read the
/// caller's directory), as `run_as` when set, without the caller's `PG*` variables.
fn command(program: &Path, cwd: &Path, run_as: Option<(u32, u32)>) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(cwd).stdin(Stdio::null());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PG") {
            cmd.env_remove(&k);
        }
    }
    if let Some((uid, gid)) = run_as {
        // std drops root's supplementary groups when it switches uid.
        cmd.uid(uid).gid(gid);
    }
    cmd
}

/// Runs a helper to completion; an error carries what it printed.
fn run(cmd: &mut Command) -> Result<Output> {
    let shown = format!("{cmd:?}");
    let output = io(cmd.output(), || format!("running {shown}"))?;
    if output.status.success() {
        return Ok(output);
    }
    Err(PostgresError::Command {
        command: shown,
        status: output.status.to_string(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    })
}

/// A port that was free a moment ago (see [`START_ATTEMPTS`] for the race).
fn free_port() -> Result<u16> {
    let l = io(std::net::TcpListener::bind("127.0.0.1:0"), || {
        "binding 127.0.0.1:0 to find a free port".to_string()
    })?;
    io(l.local_addr(), || "reading the free port".to_string()).map(|a| a.port())
}

fn spawn(
    bin: &Path,
    data: &Path,
    dir: &Path,
    port: u16,
    log: &Path,
    run_as: Option<(u32, u32)>,
) -> Result<Child> {
    let out = io(File::create(log), || format!("creating {}", log.display()))?;
    let err = io(out.try_clone(), || format!("cloning {}", log.display()))?;
    let mut cmd = command(&bin.join("postgres"), dir, run_as);
    cmd.arg("-D")
        .arg(data)
        .arg("-p")
        .arg(port.to_string())
        .args(["-c", "listen_addresses=127.0.0.1"])
        .arg("-c")
        .arg(format!("unix_socket_directories={}", dir.display()))
        // Durability is pointless for a cluster deleted after the test; these make it fast.
        .args(["-c", "fsync=off"])
        .args(["-c", "synchronous_commit=off"])
        .args(["-c", "full_page_writes=off"])
        // Several harnesses run at once (one per test); the default 128 MB each adds up.
        .args(["-c", "shared_buffers=16MB"])
        .stdout(out)
        .stderr(err);
    io(cmd.spawn(), || {
        format!("spawning {}", bin.join("postgres").display())
    })
}

fn wait_ready(child: &mut Child, bin: &Path, port: u16, log: &Path) -> Result<()> {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(PostgresError::Start {
                reason: format!("it exited with {status}"),
                log_tail: tail(log),
            });
        }
        // pg_isready exits 0 once the server accepts connections (1 while it starts up).
        let ready = Command::new(bin.join("pg_isready"))
            .args([
                "-q",
                "-h",
                "127.0.0.1",
                "-U",
                USER,
                "-d",
                "postgres",
                "-t",
                "1",
                "-p",
            ])
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return Ok(());
        }
        if start.elapsed() > READY_TIMEOUT {
            return Err(PostgresError::Start {
                reason: format!(
                    "127.0.0.1:{port} did not accept connections within {READY_TIMEOUT:?}"
                ),
                log_tail: tail(log),
            });
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Last 40 lines of a log file.
fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_answers_and_stops() {
        let pg = PostgresHarness::start().unwrap();
        assert!(pg.url().starts_with("postgres://gantry@127.0.0.1:"));
        let second = pg.create_database("second").unwrap();
        assert!(second.ends_with("/second"));
        // createdb of an existing name fails loudly, with its output.
        let err = pg.create_database("second").unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        let port = pg.port();
        let dir = pg.dir().to_path_buf();
        drop(pg);
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "server still listening after drop"
        );
        assert!(!dir.exists(), "temp dir removed");
    }
}
