//! The compact text form of a schema, sized for an LLM prompt.

use std::fmt::Write;

use super::{Column, EstimateMethod, RowEstimate, Schema, Table};

/// Longest text [`Schema::to_text`] produces, in bytes (about 4,000 tokens); tables past it
/// are named only.
pub const TEXT_BUDGET: usize = 16_000;

/// Longest rendering of one view or trigger body before it is cut with `…`.
const DDL_CAP: usize = 400;

impl Schema {
    /// One line per table (columns with type and constraints, row estimate), indented lines
    /// for its indexes and foreign keys, then views and triggers with their SQL on one line.
    /// At most [`TEXT_BUDGET`] bytes: tables that do not fit are listed by name at the end.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "SQLite database (schema version {}): {} tables, {} views, {} triggers.\n",
            self.schema_version,
            self.tables.len(),
            self.views.len(),
            self.triggers.len()
        );
        let mut left_out = Vec::new();
        for table in &self.tables {
            let block = table_text(table);
            if left_out.is_empty() && out.len() + block.len() <= TEXT_BUDGET {
                out.push_str(&block);
            } else {
                left_out.push(table.name.as_str());
            }
        }
        let mut tail = String::new();
        for v in &self.views {
            let _ = writeln!(tail, "view {}: {}", v.name, one_line(&v.ddl));
        }
        for t in &self.triggers {
            let _ = writeln!(
                tail,
                "trigger {} on {}: {}",
                t.name,
                t.table,
                one_line(&t.ddl)
            );
        }
        if out.len() + tail.len() <= TEXT_BUDGET {
            out.push_str(&tail);
        } else if !self.views.is_empty() || !self.triggers.is_empty() {
            out.push_str("(views and triggers left out for length)\n");
        }
        if !left_out.is_empty() {
            let _ = writeln!(
                out,
                "(left out for length, describe them with the full schema: {})",
                left_out.join(", ")
            );
        }
        out
    }
}

fn table_text(t: &Table) -> String {
    let columns: Vec<String> = t.columns.iter().map(|c| column_text(c, t)).collect();
    let mut out = format!("table {}", t.name);
    if let Some(rows) = t.row_estimate {
        let _ = write!(out, " ({})", rows_text(rows));
    }
    let _ = writeln!(out, ": {}", columns.join(", "));
    let pk: Vec<&str> = {
        let mut pk: Vec<&Column> = t.columns.iter().filter(|c| c.primary_key > 0).collect();
        pk.sort_by_key(|c| c.primary_key);
        pk.iter().map(|c| c.name.as_str()).collect()
    };
    if pk.len() > 1 {
        let _ = writeln!(out, "  primary key ({})", pk.join(", "));
    }
    for i in &t.indexes {
        let unique = if i.unique { "unique " } else { "" };
        let _ = writeln!(out, "  {unique}index {} ({})", i.name, i.columns.join(", "));
    }
    for fk in &t.foreign_keys {
        let _ = write!(
            out,
            "  foreign key ({}) references {}({})",
            fk.columns.join(", "),
            fk.table,
            fk.to.join(", ")
        );
        if fk.on_delete != "NO ACTION" {
            let _ = write!(out, " on delete {}", fk.on_delete);
        }
        if fk.on_update != "NO ACTION" {
            let _ = write!(out, " on update {}", fk.on_update);
        }
        out.push('\n');
    }
    out
}

fn column_text(c: &Column, t: &Table) -> String {
    let mut out = c.name.clone();
    if !c.r#type.is_empty() {
        let _ = write!(out, " {}", c.r#type);
    }
    let single_pk = c.primary_key == 1 && !t.columns.iter().any(|o| o.primary_key > 1);
    if single_pk {
        out.push_str(" PRIMARY KEY");
    }
    if c.not_null {
        out.push_str(" NOT NULL");
    }
    if let Some(d) = &c.default {
        let _ = write!(out, " DEFAULT {d}");
    }
    out
}

fn rows_text(r: RowEstimate) -> String {
    let noun = if r.count == 1 { "row" } else { "rows" };
    match r.method {
        EstimateMethod::Exact => format!("{} {noun}", r.count),
        EstimateMethod::AtLeast => format!("over {} rows", r.count),
        EstimateMethod::Statistics => format!("about {} {noun}", r.count),
    }
}

/// Whitespace collapsed to single spaces, cut at [`DDL_CAP`] characters.
fn one_line(sql: &str) -> String {
    let flat = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(DDL_CAP) {
        Some((at, _)) => format!("{}…", &flat[..at]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::describe::{ForeignKey, Index, Trigger, View};

    fn col(name: &str, ty: &str, not_null: bool, pk: i64) -> Column {
        Column {
            name: name.into(),
            r#type: ty.into(),
            not_null,
            default: None,
            primary_key: pk,
        }
    }

    fn table(name: &str, rows: u64) -> Table {
        Table {
            name: name.into(),
            ddl: String::new(),
            columns: vec![col("id", "INTEGER", false, 1), col("body", "TEXT", true, 0)],
            indexes: vec![],
            foreign_keys: vec![],
            row_estimate: Some(RowEstimate {
                count: rows,
                method: EstimateMethod::Exact,
            }),
        }
    }

    #[test]
    fn text_lists_tables_constraints_views_and_triggers_compactly() {
        let mut t = table("entries", 1);
        t.indexes.push(Index {
            name: "entries_body".into(),
            unique: true,
            columns: vec!["body".into()],
            ddl: String::new(),
        });
        t.foreign_keys.push(ForeignKey {
            columns: vec!["body".into()],
            table: "bodies".into(),
            to: vec!["id".into()],
            on_update: "NO ACTION".into(),
            on_delete: "CASCADE".into(),
        });
        t.columns[1].default = Some("'x'".into());
        let schema = Schema {
            tables: vec![t],
            views: vec![View {
                name: "recent".into(),
                ddl: "CREATE VIEW recent AS\n  SELECT *   FROM entries".into(),
            }],
            triggers: vec![Trigger {
                name: "audit".into(),
                table: "entries".into(),
                ddl: "CREATE TRIGGER audit AFTER INSERT ON entries BEGIN SELECT 1; END".into(),
            }],
            schema_version: 3,
        };
        assert_eq!(
            schema.to_text(),
            "SQLite database (schema version 3): 1 tables, 1 views, 1 triggers.\n\
             table entries (1 row): id INTEGER PRIMARY KEY, body TEXT NOT NULL DEFAULT 'x'\n  \
             unique index entries_body (body)\n  \
             foreign key (body) references bodies(id) on delete CASCADE\n\
             view recent: CREATE VIEW recent AS SELECT * FROM entries\n\
             trigger audit on entries: CREATE TRIGGER audit AFTER INSERT ON entries BEGIN SELECT 1; END\n"
        );
    }

    #[test]
    fn composite_keys_and_estimates_read_plainly() {
        let mut t = table("pairs", 10_000);
        t.columns[1].primary_key = 2;
        t.row_estimate = Some(RowEstimate {
            count: 10_000,
            method: EstimateMethod::AtLeast,
        });
        let text = Schema {
            tables: vec![t],
            views: vec![],
            triggers: vec![],
            schema_version: 0,
        }
        .to_text();
        assert!(text.contains("table pairs (over 10000 rows): id INTEGER, body TEXT NOT NULL\n  primary key (id, body)\n"), "{text}");
    }

    #[test]
    fn text_stays_within_its_budget_and_names_what_it_left_out() {
        let mut tables = Vec::new();
        for i in 0..2000 {
            tables.push(table(&format!("table_number_{i}"), 0));
        }
        let text = Schema {
            tables,
            views: vec![],
            triggers: vec![],
            schema_version: 0,
        }
        .to_text();
        let last_line = text.lines().last().unwrap();
        assert!(last_line.starts_with("(left out for length"), "{last_line}");
        assert!(last_line.contains("table_number_1999"));
        let body = text.len() - last_line.len();
        assert!(body <= TEXT_BUDGET, "{body}");
        assert!(text.contains("table table_number_0 (0 rows)"));
    }

    #[test]
    fn long_bodies_are_cut() {
        let long = format!("CREATE VIEW v AS SELECT {}", "1, ".repeat(500));
        let cut = one_line(&long);
        assert_eq!(cut.chars().count(), DDL_CAP + 1);
        assert!(cut.ends_with('…'));
    }
}
