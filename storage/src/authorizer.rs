//! The SQLite authorizer: what each role may compile, and why a statement was refused.

use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

use crate::{Role, StorageError};

/// Who the statement being prepared belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Nothing is allowed (the state between operations).
    Locked,
    /// The crate's own statements (BEGIN of a batch, describe, templates).
    Trusted,
    /// A tenant statement under a role.
    Tenant(Role),
}

/// Why the authorizer refused something.
#[derive(Clone, Debug)]
pub(crate) enum Denial {
    /// The role may not run DDL.
    Ddl(String),
    /// No tenant may run this.
    Statement(String),
}

impl Denial {
    /// The public error for this denial.
    pub(crate) fn into_error(self) -> StorageError {
        match self {
            Self::Ddl(m) => StorageError::DdlNotAllowed(m),
            Self::Statement(m) => StorageError::StatementNotAllowed(m),
        }
    }
}

/// State shared between a connection's owner and its authorizer/progress hooks.
#[derive(Debug)]
pub(crate) struct Gate {
    /// Current mode, set before preparing.
    pub mode: Mode,
    /// The first denial since the last reset.
    pub denial: Option<Denial>,
    /// The statement writes a schema table (allowed only as part of DDL).
    pub schema_write: bool,
    /// The statement is DDL.
    pub ddl: bool,
    /// When the running statement must stop.
    pub deadline: Option<Instant>,
    /// The progress handler interrupted a statement because of `deadline`.
    pub timed_out: bool,
    /// Names of the shadow tables of the database's virtual tables.
    pub shadow_tables: Vec<String>,
}

/// Shared handle to a connection's gate.
pub(crate) type SharedGate = Arc<Mutex<Gate>>;

/// A fresh, locked gate.
pub(crate) fn new_gate() -> SharedGate {
    Arc::new(Mutex::new(Gate {
        mode: Mode::Locked,
        denial: None,
        schema_write: false,
        ddl: false,
        deadline: None,
        timed_out: false,
        shadow_tables: Vec::new(),
    }))
}

/// PRAGMAs a tenant may run with an argument (the argument names a table or index).
const QUERY_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "foreign_key_check",
    "quick_check",
    "integrity_check",
];

/// PRAGMAs a tenant may only read (with a value they would set something).
const READ_PRAGMAS: &[&str] = &[
    "page_count",
    "page_size",
    "freelist_count",
    "data_version",
    "user_version",
    "schema_version",
];

/// Functions that reach outside the database file.
const DENIED_FUNCTIONS: &[&str] = &[
    "load_extension",
    "readfile",
    "writefile",
    "edit",
    "fts3_tokenizer",
];

/// Virtual table modules an admin may create.
const VTAB_MODULES: &[&str] = &["fts5", "fts5vocab", "rtree", "rtree_i32"];

/// The schema tables, writable only through DDL.
fn is_schema_table(name: &str) -> bool {
    [
        "sqlite_master",
        "sqlite_schema",
        "sqlite_temp_master",
        "sqlite_temp_schema",
    ]
    .iter()
    .any(|t| t.eq_ignore_ascii_case(name))
}

impl Gate {
    /// Resets the per-statement flags and enters `mode`.
    pub(crate) fn enter(&mut self, mode: Mode) {
        self.mode = mode;
        self.denial = None;
        self.schema_write = false;
        self.ddl = false;
        self.timed_out = false;
    }

    /// The authorizer callback.
    pub(crate) fn authorize(&mut self, ctx: &AuthContext<'_>) -> Authorization {
        let role = match self.mode {
            Mode::Trusted => return Authorization::Allow,
            Mode::Locked => return self.deny(Denial::Statement("no statement is expected".into())),
            Mode::Tenant(role) => role,
        };
        match decide(role, ctx, self) {
            Ok(()) => Authorization::Allow,
            Err(d) => self.deny(d),
        }
    }

    fn deny(&mut self, denial: Denial) -> Authorization {
        if self.denial.is_none() {
            self.denial = Some(denial);
        }
        Authorization::Deny
    }
}

/// Decides one action for a tenant role.
fn decide(role: Role, ctx: &AuthContext<'_>, gate: &mut Gate) -> Result<(), Denial> {
    let st = |m: &str| Err(Denial::Statement(m.to_owned()));
    let reads = matches!(
        ctx.action,
        AuthAction::Select
            | AuthAction::Read { .. }
            | AuthAction::Function { .. }
            | AuthAction::Pragma { .. }
    );
    if !reads
        && ctx
            .database_name
            .is_some_and(|d| d.eq_ignore_ascii_case("temp"))
    {
        return st("TEMP objects are not allowed");
    }
    match ctx.action {
        AuthAction::Select | AuthAction::Read { .. } | AuthAction::Recursive => Ok(()),
        AuthAction::Function { function_name } => {
            if DENIED_FUNCTIONS
                .iter()
                .any(|f| f.eq_ignore_ascii_case(function_name))
            {
                return st(&format!("function {function_name}() is not allowed"));
            }
            Ok(())
        }
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => pragma(pragma_name, pragma_value),
        AuthAction::Insert { table_name }
        | AuthAction::Delete { table_name }
        | AuthAction::Update { table_name, .. } => {
            if is_schema_table(table_name) {
                // CREATE/DROP report this write before their own action; a
                // write without a DDL action is refused after prepare.
                gate.schema_write = true;
                Ok(())
            } else if role == Role::Read
                // Modules such as rtree prepare writes to their shadow tables
                // when they connect, even for a read. Tenant SQL cannot write
                // shadow tables: SQLITE_DBCONFIG_DEFENSIVE makes them read-only
                // outside the module.
                && !gate.shadow_tables.iter().any(|t| t.eq_ignore_ascii_case(table_name))
            {
                st("read-only token")
            } else {
                Ok(())
            }
        }
        AuthAction::CreateTempTable { .. }
        | AuthAction::CreateTempIndex { .. }
        | AuthAction::CreateTempTrigger { .. }
        | AuthAction::CreateTempView { .. }
        | AuthAction::DropTempTable { .. }
        | AuthAction::DropTempIndex { .. }
        | AuthAction::DropTempTrigger { .. }
        | AuthAction::DropTempView { .. } => st("TEMP objects are not allowed"),
        AuthAction::Attach { .. } => st("ATTACH is not allowed"),
        AuthAction::Detach { .. } => st("DETACH is not allowed"),
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => {
            st("transaction control is not allowed; send a batch")
        }
        AuthAction::CreateVtable { module_name, .. } => {
            if !VTAB_MODULES
                .iter()
                .any(|m| m.eq_ignore_ascii_case(module_name))
            {
                return st(&format!(
                    "virtual table module {module_name} is not allowed"
                ));
            }
            ddl(role, gate, "CREATE VIRTUAL TABLE")
        }
        AuthAction::CreateTable { .. } => ddl(role, gate, "CREATE TABLE"),
        AuthAction::CreateIndex { .. } => ddl(role, gate, "CREATE INDEX"),
        AuthAction::CreateTrigger { .. } => ddl(role, gate, "CREATE TRIGGER"),
        AuthAction::CreateView { .. } => ddl(role, gate, "CREATE VIEW"),
        AuthAction::DropTable { .. } => ddl(role, gate, "DROP TABLE"),
        AuthAction::DropIndex { .. } => ddl(role, gate, "DROP INDEX"),
        AuthAction::DropTrigger { .. } => ddl(role, gate, "DROP TRIGGER"),
        AuthAction::DropView { .. } => ddl(role, gate, "DROP VIEW"),
        AuthAction::DropVtable { .. } => ddl(role, gate, "DROP TABLE (virtual)"),
        AuthAction::AlterTable { .. } => ddl(role, gate, "ALTER TABLE"),
        AuthAction::Reindex { .. } => ddl(role, gate, "REINDEX"),
        AuthAction::Analyze { .. } => ddl(role, gate, "ANALYZE"),
        _ => st("unknown statement kind"),
    }
}

fn ddl(role: Role, gate: &mut Gate, what: &str) -> Result<(), Denial> {
    gate.ddl = true;
    if role == Role::Admin {
        Ok(())
    } else {
        Err(Denial::Ddl(format!("{what} needs an admin token")))
    }
}

fn pragma(name: &str, value: Option<&str>) -> Result<(), Denial> {
    let is = |list: &[&str]| list.iter().any(|p| p.eq_ignore_ascii_case(name));
    if is(QUERY_PRAGMAS) || (is(READ_PRAGMAS) && value.is_none()) {
        Ok(())
    } else if value.is_some() {
        Err(Denial::Statement(format!(
            "setting PRAGMA {name} is not allowed"
        )))
    } else {
        Err(Denial::Statement(format!("PRAGMA {name} is not allowed")))
    }
}
