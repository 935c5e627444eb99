//! The run store as users handle it: a SQLite file copied alone once a run
//! is over, and a store read by someone who may not write it (a file
//! another user's service keeps, a read-only mount, a copy from a CI job; a
//! PostgreSQL role that may only read).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{json, run_kept, scratch, stored_runs, texts, write, ONE_AGENT};

/// The names of the files in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("{e}"))
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Whether the tests run as root: a folder they make is root's.
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    let probe = scratch();
    std::fs::metadata(probe.path()).is_ok_and(|made| made.uid() == 0)
}

/// A reader that may read the store folder `dir` and its files but write
/// none of them. Root may write any file, so as root the commands run as
/// user `nobody` (with `setpriv`, from a copy of the binary that user may
/// run); otherwise the folder and its files are made read-only.
struct Reader {
    program: PathBuf,
    /// Keeps the binary's copy.
    _bin: Option<tempfile::TempDir>,
}

impl Reader {
    fn of(dir: &Path) -> Self {
        let binary = PathBuf::from(env!("CARGO_BIN_EXE_orchestra"));
        if !is_root() {
            for name in listing(dir) {
                set_mode(&dir.join(name), 0o444);
            }
            set_mode(dir, 0o555);
            return Self {
                program: binary,
                _bin: None,
            };
        }
        set_mode(dir, 0o755);
        for name in listing(dir) {
            set_mode(&dir.join(name), 0o644);
        }
        let bin = scratch();
        set_mode(bin.path(), 0o755);
        let program = bin.path().join("orchestra");
        std::fs::copy(&binary, &program).unwrap_or_else(|e| panic!("{e}"));
        set_mode(&program, 0o755);
        Self {
            program,
            _bin: Some(bin),
        }
    }

    /// `orchestra ARGS` as this reader.
    fn orchestra(&self, args: &[&str]) -> Output {
        let mut command = if is_root() {
            let mut setpriv = Command::new("setpriv");
            setpriv
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&self.program);
            setpriv
        } else {
            Command::new(&self.program)
        };
        command
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("ORCHESTRA_STORE")
            .current_dir("/")
            .output()
            .unwrap_or_else(|e| panic!("setpriv or orchestra: {e}"))
    }
}

#[test]
fn a_finished_run_is_in_the_store_file_alone_so_a_copy_of_it_lists_the_run() {
    let dir = scratch();
    let store = dir.path().join("runs.db");
    let file = write(dir.path(), "one.toml", ONE_AGENT);
    run_kept(&store, &file);
    let kept = listing(dir.path());
    assert!(
        !kept
            .iter()
            .any(|name| name.ends_with("-wal") || name.ends_with("-shm")),
        "the store's log was left beside it: {kept:?}"
    );

    let elsewhere = scratch();
    let copy = elsewhere.path().join("copy.db");
    std::fs::copy(&store, &copy).unwrap_or_else(|e| panic!("{e}"));
    let original = stored_runs(&store);
    let copied = stored_runs(&copy);
    assert_eq!(copied.as_array().map(Vec::len), Some(1), "{copied:#}");
    assert_eq!(copied[0]["id"], original[0]["id"]);
    assert_eq!(copied[0]["status"], "succeeded");
}

#[test]
fn a_store_the_user_may_read_but_not_write_is_listed_and_shown_and_left_unchanged() {
    let dir = scratch();
    let folder = dir.path().join("store");
    std::fs::create_dir(&folder).unwrap_or_else(|e| panic!("{e}"));
    let store = folder.join("runs.db");
    let file = write(dir.path(), "one.toml", ONE_AGENT);
    run_kept(&store, &file);
    let id = stored_runs(&store)[0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no run id"))
        .to_owned();
    let before = listing(&folder);
    set_mode(dir.path(), 0o755);
    let reader = Reader::of(&folder);
    let store_arg = store.to_string_lossy().into_owned();

    let listed = reader.orchestra(&["runs", "--json", "--store", &store_arg]);
    let (stdout, stderr) = texts(&listed);
    assert!(listed.status.success(), "{stderr}");
    let runs = json(&stdout);
    assert_eq!(runs[0]["id"], id.as_str(), "{runs:#}");
    assert_eq!(runs[0]["status"], "succeeded");

    let shown = reader.orchestra(&["show", &id[..8], "--store", &store_arg]);
    let (stdout, stderr) = texts(&shown);
    assert!(shown.status.success(), "{stderr}");
    assert!(stdout.contains("status    succeeded"), "{stdout}");
    assert!(
        stdout.lines().any(|line| line.starts_with("a ")),
        "the trace's agent: {stdout}"
    );

    // Deleting is writing: refused, with why.
    let pruned = reader.orchestra(&["prune", "--keep", "0", "--store", &store_arg]);
    let (_, stderr) = texts(&pruned);
    assert_eq!(pruned.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot open the run store"), "{stderr}");

    drop(reader);
    set_mode(&folder, 0o755);
    assert_eq!(listing(&folder), before, "the reader changed the folder");
    assert_eq!(stored_runs(&store).as_array().map(Vec::len), Some(1));
}

/// The library's test stores: a throw-away PostgreSQL cluster (or `DATABASE_URL`).
#[path = "../../claude-agent-sdk/tests/store_support/mod.rs"]
mod store_support;

/// `url` with its user part replaced by `user:password`.
fn as_user(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}:{password}@{host}")
}

#[test]
fn a_postgresql_role_that_may_only_read_lists_and_shows_the_runs() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let place = runtime.block_on(store_support::Place::new(store_support::Kind::Postgres));
    let dir = scratch();
    let file = write(dir.path(), "one.toml", ONE_AGENT);
    let ran = common::orchestra()
        .args(["run", "-q", "--store", &place.address])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(ran.status.success(), "{}", texts(&ran).1);

    // Roles belong to the whole server: this one's name is the test's own.
    // It may read the tables and create nothing (as from PostgreSQL 15 on,
    // whatever the server's version).
    let role = format!("cas_reader_{}_{}", std::process::id(), fastrand::u32(..));
    let grant = format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'reads'; \
         GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}; \
         REVOKE CREATE ON SCHEMA public FROM PUBLIC"
    );
    runtime.block_on(store_support::execute(&place, &grant));
    let reader = as_user(&place.address, &role, "reads");

    let listed = common::orchestra()
        .args(["runs", "--json", "--store", &reader])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = texts(&listed);
    assert!(listed.status.success(), "{stderr}");
    let runs = json(&stdout);
    assert_eq!(runs.as_array().map(Vec::len), Some(1), "{runs:#}");
    assert_eq!(runs[0]["status"], "succeeded");
    let id = runs[0]["id"].as_str().unwrap_or_default().to_owned();

    let shown = common::orchestra()
        .args(["show", &id, "--store", &reader])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = texts(&shown);
    assert!(shown.status.success(), "{stderr}");
    assert!(stdout.contains("status    succeeded"), "{stdout}");

    let pruned = common::orchestra()
        .args(["prune", "--keep", "0", "--store", &reader])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, stderr) = texts(&pruned);
    assert_eq!(pruned.status.code(), Some(1), "{stderr}");
    // The role cannot even open the store to write it (its schema is set
    // up, and checked, by writing): `runs` and `show` read it read-only.
    assert!(stderr.contains("cannot open the run store"), "{stderr}");
    assert!(!stderr.contains("reads"), "the password is shown: {stderr}");

    // The role is the server's, not the test database's: it goes too.
    let cleanup = format!("DROP OWNED BY {role}; DROP ROLE {role}");
    runtime.block_on(store_support::execute(&place, &cleanup));
}
