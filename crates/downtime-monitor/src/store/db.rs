//! The two databases the history can live in, behind one small interface: SQLite (one
//! monitor, the default) and PostgreSQL (several monitors in different places writing to one
//! database, for quorum reports). SQL is written once with `?` placeholders; the PostgreSQL
//! side numbers them and keeps prepared statements. PostgreSQL goes through
//! `standby_common::pg` (bounded connect, verified TLS, `.pgpass`, exit 4 when unreachable).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use standby_common::pg::types::{ToSql, Type};
use standby_common::pg::{self, BlockingClient, ConnectOptions};
use standby_common::secret::Secret;

/// A value going into or coming out of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Int(i64),
    Real(f64),
    Text(String),
    NullInt,
    NullText,
}

impl Val {
    pub fn int(&self) -> i64 {
        match self {
            Val::Int(i) => *i,
            Val::Real(r) => *r as i64,
            _ => 0,
        }
    }
    pub fn opt_int(&self) -> Option<i64> {
        match self {
            Val::Int(i) => Some(*i),
            _ => None,
        }
    }
    pub fn real(&self) -> f64 {
        match self {
            Val::Real(r) => *r,
            Val::Int(i) => *i as f64,
            _ => 0.0,
        }
    }
    pub fn text(&self) -> String {
        self.opt_text().unwrap_or_default()
    }
    pub fn opt_text(&self) -> Option<String> {
        match self {
            Val::Text(t) => Some(t.clone()),
            _ => None,
        }
    }
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(v)
    }
}
impl From<bool> for Val {
    fn from(v: bool) -> Val {
        Val::Int(i64::from(v))
    }
}
impl From<f64> for Val {
    fn from(v: f64) -> Val {
        Val::Real(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Text(v.to_string())
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Val {
        Val::Text(v.clone())
    }
}
impl From<Option<&String>> for Val {
    fn from(v: Option<&String>) -> Val {
        v.map(|s| Val::Text(s.clone())).unwrap_or(Val::NullText)
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Val {
        v.map(Val::Int).unwrap_or(Val::NullInt)
    }
}

/// The bound on connecting (TCP, TLS, start-up and login together).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which SQL dialect a connection speaks, where the two differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A connection.
pub enum Db {
    Sqlite(rusqlite::Connection),
    Postgres { client: Box<BlockingClient>, prepared: HashMap<String, pg::Statement> },
}

impl Db {
    pub fn sqlite(path: &Path) -> anyhow::Result<Db> {
        let conn =
            rusqlite::Connection::open(path).with_context(|| format!("cannot open database {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .and_then(|_| conn.pragma_update(None, "synchronous", "NORMAL"))
            .with_context(|| format!("database {} is unusable", path.display()))?;
        Ok(Db::Sqlite(conn))
    }

    /// Connect with a libpq-style conninfo or `postgres://` URL; the password (if any) is a
    /// secret kept out of the connection string (else `~/.pgpass` is read). An unreachable or
    /// silent server is an error with exit code 4, within [`CONNECT_TIMEOUT`].
    pub fn postgres(conninfo: &str, password: Option<&Secret>, ca_file: Option<&Path>) -> anyhow::Result<Db> {
        let client = ConnectOptions::parse(conninfo)?
            .password(password.cloned())
            .ca_file(ca_file.map(Path::to_path_buf))
            .timeout(CONNECT_TIMEOUT)
            .options("-c statement_timeout=60000")
            .connect_blocking()
            .context("cannot connect to the PostgreSQL store")?;
        Ok(Db::Postgres { client: Box::new(client), prepared: HashMap::new() })
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres { .. } => Dialect::Postgres,
        }
    }

    /// Run statements without parameters (schema, BEGIN, COMMIT).
    pub fn batch(&mut self, sql: &str) -> anyhow::Result<()> {
        match self {
            Db::Sqlite(c) => c.execute_batch(sql)?,
            Db::Postgres { client, .. } => client.batch_execute(sql)?,
        }
        Ok(())
    }

    /// Run one statement; returns the rows it changed.
    pub fn exec(&mut self, sql: &str, params: &[Val]) -> anyhow::Result<u64> {
        match self {
            Db::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                Ok(stmt.execute(rusqlite::params_from_iter(params.iter().map(sqlite_value)))? as u64)
            }
            Db::Postgres { client, prepared } => {
                let stmt = prepare(client, prepared, sql)?;
                let boxed = pg_params(params);
                let refs: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|b| b.as_ref()).collect();
                Ok(client.execute(&stmt, &refs)?)
            }
        }
    }

    /// Run a query; every row as values.
    pub fn rows(&mut self, sql: &str, params: &[Val]) -> anyhow::Result<Vec<Vec<Val>>> {
        match self {
            Db::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let n = stmt.column_count();
                let rows = stmt.query_map(rusqlite::params_from_iter(params.iter().map(sqlite_value)), |r| {
                    (0..n)
                        .map(|i| {
                            Ok(match r.get_ref(i)? {
                                rusqlite::types::ValueRef::Integer(v) => Val::Int(v),
                                rusqlite::types::ValueRef::Real(v) => Val::Real(v),
                                rusqlite::types::ValueRef::Text(t) => {
                                    Val::Text(String::from_utf8_lossy(t).into_owned())
                                }
                                _ => Val::NullInt,
                            })
                        })
                        .collect::<rusqlite::Result<Vec<Val>>>()
                })?;
                Ok(rows.collect::<Result<_, _>>()?)
            }
            Db::Postgres { client, prepared } => {
                let stmt = prepare(client, prepared, sql)?;
                let boxed = pg_params(params);
                let refs: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|b| b.as_ref()).collect();
                let rows = client.query(&stmt, &refs)?;
                rows.iter()
                    .map(|row| {
                        (0..row.len())
                            .map(|i| {
                                let ty = row.columns()[i].type_().clone();
                                Ok(if ty == Type::INT8 {
                                    row.get::<_, Option<i64>>(i).map(Val::Int).unwrap_or(Val::NullInt)
                                } else if ty == Type::INT4 {
                                    row.get::<_, Option<i32>>(i).map(|v| Val::Int(v.into())).unwrap_or(Val::NullInt)
                                } else if ty == Type::FLOAT8 {
                                    row.get::<_, Option<f64>>(i).map(Val::Real).unwrap_or(Val::NullInt)
                                } else {
                                    row.get::<_, Option<String>>(i).map(Val::Text).unwrap_or(Val::NullText)
                                })
                            })
                            .collect::<anyhow::Result<Vec<Val>>>()
                    })
                    .collect()
            }
        }
    }
}

fn sqlite_value(v: &Val) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match v {
        Val::Int(i) => Value::Integer(*i),
        Val::Real(r) => Value::Real(*r),
        Val::Text(t) => Value::Text(t.clone()),
        Val::NullInt | Val::NullText => Value::Null,
    }
}

fn pg_params(params: &[Val]) -> Vec<Box<dyn ToSql + Sync>> {
    params
        .iter()
        .map(|v| -> Box<dyn ToSql + Sync> {
            match v {
                Val::Int(i) => Box::new(*i),
                Val::Real(r) => Box::new(*r),
                Val::Text(t) => Box::new(t.clone()),
                Val::NullInt => Box::new(None::<i64>),
                Val::NullText => Box::new(None::<String>),
            }
        })
        .collect()
}

/// `?` placeholders numbered `$1, $2, ...`, the statement prepared once per connection.
fn prepare(
    client: &BlockingClient,
    cache: &mut HashMap<String, pg::Statement>,
    sql: &str,
) -> anyhow::Result<pg::Statement> {
    if let Some(s) = cache.get(sql) {
        return Ok(s.clone());
    }
    let mut numbered = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for ch in sql.chars() {
        if ch == '?' {
            n += 1;
            numbered.push_str(&format!("${n}"));
        } else {
            numbered.push(ch);
        }
    }
    let stmt = client.prepare(&numbered).with_context(|| format!("preparing {numbered}"))?;
    cache.insert(sql.to_string(), stmt.clone());
    Ok(stmt)
}
