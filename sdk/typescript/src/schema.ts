/**
 * The schema document `describe()` returns, and the short summary `asTools()` puts in the
 * `query` tool's description.
 */

export interface Column {
  name: string;
  /** Declared type (may be empty). */
  type: string;
  notNull: boolean;
  /** Default expression as written, or null. */
  default: string | null;
  /** Position in the primary key (1-based), 0 when not part of it. */
  primaryKey: number;
}

export interface Index {
  name: string;
  unique: boolean;
  columns: string[];
  ddl: string;
}

export interface ForeignKey {
  columns: string[];
  table: string;
  to: string[];
  onUpdate: string;
  onDelete: string;
}

export interface RowEstimate {
  count: number;
  /** `exact` (counted), `atLeast` (counting stopped at a bound), `statistics` (ANALYZE). */
  method: "exact" | "atLeast" | "statistics";
}

export interface Table {
  name: string;
  ddl: string;
  columns: Column[];
  indexes: Index[];
  foreignKeys: ForeignKey[];
  /** Null for virtual tables. */
  rowEstimate: RowEstimate | null;
}

export interface Schema {
  tables: Table[];
  views: { name: string; ddl: string }[];
  triggers: { name: string; table: string; ddl: string }[];
  /** `PRAGMA user_version`: the template migration version. */
  schemaVersion: number;
}

/** One line per table: `name(col TYPE, …)`, then the views. */
export function schemaSummary(schema: Schema): string {
  const lines = schema.tables.map((t) => {
    const cols = t.columns.map((c) => {
      const parts = [c.name, c.type, c.primaryKey ? "PRIMARY KEY" : "", c.notNull ? "NOT NULL" : ""];
      return parts.filter(Boolean).join(" ");
    });
    return `table ${t.name}: ${cols.join(", ")}`;
  });
  for (const v of schema.views) lines.push(`view ${v.name}`);
  return lines.join("\n");
}
