//! The stores the durable-run tests run against: a SQLite file in a fresh
//! temporary folder, and a PostgreSQL database — on the server `DATABASE_URL`
//! names, or else on a throw-away cluster this test process starts from the
//! server programs on the machine (`initdb`, `pg_ctl`) in a temporary folder
//! on a free loopback port, and that a watchdog stops when the process ends.
//! Where neither is possible the tests fail and say what to install.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use claude_agent_sdk::orchestration::store::{
    PostgresJournal, Prune, RunSummary, SqliteJournal, StoreOptions,
};
use claude_agent_sdk::orchestration::{Journal, Result, RunId};

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

pub const KINDS: [Kind; 2] = [Kind::Sqlite, Kind::Postgres];

/// Where a store lives: opening it again gives a second journal on the same
/// data (another process would do the same).
#[derive(Debug, Clone)]
pub struct Place {
    pub kind: Kind,
    /// The SQLite file, or the PostgreSQL URL.
    pub address: String,
    /// Keeps the SQLite file's folder until the test ends.
    _folder: Option<Arc<TempDir>>,
}

impl Place {
    /// A new, empty store of `kind`.
    pub async fn new(kind: Kind) -> Self {
        match kind {
            Kind::Sqlite => {
                let folder = Arc::new(TempDir::new("sqlite"));
                Self {
                    kind,
                    address: folder.path().join("runs.db").display().to_string(),
                    _folder: Some(folder),
                }
            }
            Kind::Postgres => Self {
                kind,
                address: fresh_database().await,
                _folder: None,
            },
        }
    }

    pub async fn open(&self) -> Store {
        self.open_with(StoreOptions::new()).await
    }

    pub async fn open_with(&self, options: StoreOptions) -> Store {
        self.try_open(options).await.unwrap_or_else(|error| {
            panic!(
                "cannot open the {:?} store at {}: {error}",
                self.kind, self.address
            )
        })
    }

    pub async fn try_open(&self, options: StoreOptions) -> Result<Store> {
        Ok(match self.kind {
            Kind::Sqlite => Store::Sqlite(Arc::new(
                SqliteJournal::open_with(&self.address, options).await?,
            )),
            Kind::Postgres => Store::Postgres(Arc::new(
                PostgresJournal::connect_with(&self.address, options).await?,
            )),
        })
    }
}

impl Place {
    /// The store opened for reading only (it must hold a store already).
    pub async fn open_read_only(&self) -> Result<Store> {
        Ok(match self.kind {
            Kind::Sqlite => Store::Sqlite(Arc::new(
                SqliteJournal::open_read_only(&self.address).await?,
            )),
            Kind::Postgres => Store::Postgres(Arc::new(
                PostgresJournal::connect_read_only(&self.address).await?,
            )),
        })
    }
}

/// An open store.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(Arc<SqliteJournal>),
    Postgres(Arc<PostgresJournal>),
}

impl Store {
    pub fn journal(&self) -> Arc<dyn Journal> {
        match self {
            Self::Sqlite(store) => store.clone(),
            Self::Postgres(store) => store.clone(),
        }
    }

    pub async fn runs(&self, limit: usize) -> Vec<RunSummary> {
        match self {
            Self::Sqlite(store) => store.runs(limit).await,
            Self::Postgres(store) => store.runs(limit).await,
        }
        .expect("list runs")
    }

    pub async fn run(&self, run: RunId) -> Option<RunSummary> {
        match self {
            Self::Sqlite(store) => store.run(run).await,
            Self::Postgres(store) => store.run(run).await,
        }
        .expect("read run")
    }

    pub async fn close(&self) -> Result<()> {
        match self {
            Self::Sqlite(store) => store.close().await,
            Self::Postgres(store) => store.close().await,
        }
    }

    pub async fn prune(&self, which: Prune) -> u64 {
        match self {
            Self::Sqlite(store) => store.prune(which).await,
            Self::Postgres(store) => store.prune(which).await,
        }
        .expect("prune")
    }
}

/// A folder removed when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(what: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "cas-{what}-{}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            fastrand::u32(..)
        ));
        std::fs::create_dir_all(&path).expect("create a temporary folder");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A new database on the test server: its URL.
async fn fresh_database() -> String {
    use sqlx::Connection as _;
    let server = server();
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "cas_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        fastrand::u32(..)
    );
    let mut admin = sqlx::PgConnection::connect(&server.admin_url)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to {}: {error}", server.admin_url));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|error| panic!("cannot create database {name}: {error}"));
    server.url_of(&name)
}

/// Runs `sql` on the store at `place` directly (as another program would).
pub async fn execute(place: &Place, sql: &str) {
    direct(place, sql, false).await;
}

/// The number `sql` (a query of one value) reads from the store at `place`
/// (as another program would).
pub async fn query_i64(place: &Place, sql: &str) -> i64 {
    direct(place, sql, true).await
}

/// Runs `sql` on the store at `place` on a connection of its own: with
/// `read`, a query of one value, that number; else statements, and 0.
async fn direct(place: &Place, sql: &str, read: bool) -> i64 {
    match place.kind {
        Kind::Sqlite => {
            let url = format!("sqlite:{}", place.address);
            on::<sqlx::Sqlite>(&url, "open the file", sql, read).await
        }
        Kind::Postgres => on::<sqlx::Postgres>(&place.address, "connect", sql, read).await,
    }
}

/// [`direct`] on a database of type `DB` at `url` (`opening` says what a
/// failure to connect failed to do).
async fn on<DB>(url: &str, opening: &str, sql: &str, read: bool) -> i64
where
    DB: sqlx::Database,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
{
    use sqlx::Connection as _;
    let mut connection = DB::Connection::connect(url).await.expect(opening);
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    if read {
        sqlx::query_scalar(sql)
            .fetch_one(&mut connection)
            .await
            .expect("query")
    } else {
        sqlx::raw_sql(sql)
            .execute(&mut connection)
            .await
            .expect("execute");
        0
    }
}

/// The PostgreSQL server the tests use.
pub struct Server {
    /// A URL to the `postgres` database, for creating others.
    pub admin_url: String,
    /// The cluster this process started, if it started one.
    pub cluster: Option<Cluster>,
}

impl Server {
    pub fn url_of(&self, database: &str) -> String {
        match self.admin_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{database}"),
            None => format!("{}/{database}", self.admin_url),
        }
    }
}

/// A cluster this process started.
pub struct Cluster {
    pub data: PathBuf,
    pub port: u16,
    pub bin: PathBuf,
    /// The user the server runs as (when the tests run as root, `postgres`).
    pub user: Option<String>,
}

impl Cluster {
    /// Runs `pg_ctl` with `args` as the cluster's user.
    pub fn pg_ctl(&self, args: &[&str]) -> bool {
        as_user(self.user.as_deref(), &self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Stops the server (fast: connections are cut).
    pub fn stop(&self) -> bool {
        self.pg_ctl(&["-m", "fast", "-w", "stop"])
    }

    /// Starts it again.
    pub fn start(&self) -> bool {
        let options = format!("-p {} -k {} -h 127.0.0.1", self.port, self.data.display());
        self.pg_ctl(&["-w", "-l", &self.log(), "-o", &options, "start"])
    }

    fn log(&self) -> String {
        self.data.with_extension("log").display().to_string()
    }
}

/// The server, started on first use.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Server {
            admin_url: url,
            cluster: None,
        },
        _ => start_cluster(),
    })
}

fn start_cluster() -> Server {
    let Some(bin) = server_programs() else {
        panic!(
            "the PostgreSQL tests need a server: install PostgreSQL's server programs \
             (Debian: `apt-get install postgresql`; initdb and pg_ctl are then in \
             /usr/lib/postgresql/*/bin), or point DATABASE_URL at a server \
             (postgres://user:password@host:port/database)"
        )
    };
    let root = unsafe_is_root();
    let user = root.then(|| "postgres".to_owned());
    let base = std::env::temp_dir().join(format!(
        "cas-pg-{}-{}",
        std::process::id(),
        fastrand::u32(..)
    ));
    let data = base.join("data");
    std::fs::create_dir_all(&base).expect("create the cluster's folder");
    if let Some(user) = &user {
        let status = Command::new("chown")
            .args(["-R", &format!("{user}:"), &base.display().to_string()])
            .status()
            .expect("chown");
        assert!(status.success(), "cannot give {} to {user}", base.display());
    }
    let init = as_user(user.as_deref(), &bin.join("initdb"))
        .args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
            "-D",
        ])
        .arg(&data)
        .stdout(Stdio::null())
        .output()
        .expect("run initdb");
    assert!(
        init.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let port = free_port();
    let cluster = Cluster {
        data: data.clone(),
        port,
        bin: bin.clone(),
        user: user.clone(),
    };
    // Tests trade durability for speed; the benchmarks (CAS_PG_DURABLE=1)
    // keep PostgreSQL's defaults.
    let settings = if std::env::var_os("CAS_PG_DURABLE").is_some() {
        "max_connections = 200\n"
    } else {
        "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n"
    };
    std::fs::write(data.join("postgresql.auto.conf"), settings).expect("configure the cluster");
    assert!(
        cluster.start(),
        "pg_ctl could not start the cluster in {}",
        data.display()
    );
    // The watchdog stops the cluster and removes its folder when this
    // process ends, however it ends.
    let watchdog = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop}; rm -rf {base}",
        pid = std::process::id(),
        stop = shell_as_user(
            user.as_deref(),
            &format!(
                "{} -D {} -m immediate stop",
                bin.join("pg_ctl").display(),
                data.display()
            )
        ),
        base = base.display()
    );
    let _ = Command::new("sh")
        .args(["-c", &watchdog])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    Server {
        admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        cluster: Some(cluster),
    }
}

/// The folder with `initdb` and `pg_ctl`: on the `PATH`, or Debian's.
fn server_programs() -> Option<PathBuf> {
    if let Some(initdb) = find_program("initdb") {
        return initdb.parent().map(Path::to_path_buf);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok().map(|entry| entry.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

fn find_program(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}

fn unsafe_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn as_user(user: Option<&str>, program: &Path) -> Command {
    match user {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--"]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

fn shell_as_user(user: Option<&str>, command: &str) -> String {
    match user {
        Some(user) => format!("runuser -u {user} -- {command}"),
        None => command.to_owned(),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}
