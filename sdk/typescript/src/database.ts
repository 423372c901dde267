/**
 * One database: `query`, `batch`, `describe`, and the same as tools for an AI agent.
 */

import { PerSQLError } from "./errors.js";
import type { Session } from "./http.js";
import type { Schema } from "./schema.js";
import { schemaSummary } from "./schema.js";

/** A bound value. BLOBs travel as `{ base64: "…" }`. */
export type Value = string | number | boolean | null | { base64: string };
/** Positional (`?`) or named (`:name`, `@name`, `$name`) parameters. */
export type Params = readonly Value[] | Readonly<Record<string, Value>>;
/** A row: column name → value (INTEGERs beyond ±2^53 arrive as strings). */
export type Row = Record<string, unknown>;

/** Execution figures of one statement. */
export interface QueryMeta {
  rowsRead: number;
  rowsWritten: number;
  changes: number;
  lastInsertRowid: number;
  durationMs: number;
}

/** The answer to one statement. */
export interface QueryResult<R extends Row = Row> {
  data: R[];
  columns: string[];
  meta: QueryMeta;
}

/** One statement of a batch. */
export interface Statement {
  sql: string;
  params?: Params;
}

/** Tool definition layouts the server renders (`GET …/tools?format=`). */
export type ToolFormat = "openai" | "anthropic" | "mcp";

/** What `GET …/tools` answers. */
export interface ToolDefinitions {
  database: string;
  role: "read" | "write" | "admin";
  format: ToolFormat;
  tools: Record<string, unknown>[];
}

/**
 * A tool for an agent toolkit: name, description, JSON Schema `parameters` (also as
 * `inputSchema`), and `execute`. Query failures the model can fix (SQL errors, refused
 * statements, limits) come back as `{ error, detail }` instead of throwing.
 */
export interface AgentTool<A = Record<string, unknown>> {
  name: string;
  description: string;
  parameters: Record<string, unknown>;
  inputSchema: Record<string, unknown>;
  execute(args: A): Promise<unknown>;
}

const QUERY_PARAMETERS = {
  type: "object",
  properties: {
    sql: { type: "string", description: "One SQLite statement. Put values in `params` with ? placeholders." },
    params: {
      type: "array",
      description: "Values for the ? placeholders, in order.",
      items: { type: ["string", "number", "integer", "boolean", "null"] },
    },
  },
  required: ["sql"],
  additionalProperties: false,
} as const;

const DESCRIBE_PARAMETERS = { type: "object", properties: {}, additionalProperties: false } as const;

/** Statuses a model can act on (bad SQL, refused statement, too large, too slow). */
const MODEL_FIXABLE = new Set([400, 403, 408, 413]);

export class Database {
  /** `ns/db`. */
  readonly ref: string;
  readonly #session: Session;
  readonly #path: string;
  #schema: Schema | undefined;

  constructor(session: Session, ref: string) {
    const parts = ref.split("/");
    if (parts.length !== 2 || !parts[0] || !parts[1]) {
      throw new TypeError(`PerSQL: a database is "namespace/database", got ${JSON.stringify(ref)}`);
    }
    this.ref = ref;
    this.#session = session;
    this.#path = `/v1/databases/${encodeURIComponent(parts[0])}/${encodeURIComponent(parts[1])}`;
  }

  /** Runs one SQL statement. */
  query<R extends Row = Row>(sql: string, params?: Params): Promise<QueryResult<R>> {
    const json: { sql: string; params?: Params } = { sql };
    if (params !== undefined) json.params = params;
    return this.#session.request({ method: "POST", path: `${this.#path}/query`, json });
  }

  /** Runs statements in one transaction: all succeed, or none has effect. */
  async batch(statements: readonly (Statement | string)[]): Promise<QueryResult[]> {
    const body = { statements: statements.map((s) => (typeof s === "string" ? { sql: s } : s)) };
    const res = await this.#session.request<{ results: QueryResult[] }>({
      method: "POST",
      path: `${this.#path}/batch`,
      json: body,
    });
    return res.results;
  }

  /** The schema: tables (columns, indexes, foreign keys, DDL, row estimates), views, triggers. */
  describe(): Promise<Schema>;
  /** The schema as compact text, sized for an LLM prompt. */
  describe(options: { format: "text" }): Promise<string>;
  async describe(options?: { format?: "json" | "text" }): Promise<Schema | string> {
    if (options?.format === "text") {
      return this.#session.request<string>({ method: "GET", path: `${this.#path}/schema?format=text` });
    }
    const schema = await this.#session.request<Schema>({ method: "GET", path: `${this.#path}/schema` });
    this.#schema = schema;
    return schema;
  }

  /** The server's tool definitions for this token (a read token gets a read-only `query`). */
  tools(format: ToolFormat = "mcp"): Promise<ToolDefinitions> {
    return this.#session.request({ method: "GET", path: `${this.#path}/tools?format=${format}` });
  }

  /** The database's MCP endpoint (Streamable HTTP; send the token as a Bearer header). */
  get mcpURL(): string {
    return `${this.#session.baseURL}${this.#path}/mcp`;
  }

  /**
   * `query` and `describe` as agent tools. The `query` description carries the schema of
   * the last `describe()` (call it first); the server enforces the token's role whatever
   * the model sends.
   */
  asTools(): [AgentTool<{ sql: string; params?: Value[] }>, AgentTool<Record<string, never>>] {
    const summary = this.#schema ? `\n\nSchema:\n${schemaSummary(this.#schema)}` : "";
    const query: AgentTool<{ sql: string; params?: Value[] }> = {
      name: "query",
      description:
        `Run one SQL statement on the SQLite database ${this.ref} and get the result as JSON ` +
        `({data: rows as objects, columns, meta}). Every statement runs on its own (no BEGIN/COMMIT). ` +
        `Use LIMIT on large tables.${summary}`,
      parameters: QUERY_PARAMETERS,
      inputSchema: QUERY_PARAMETERS,
      execute: (args) => fixable(() => this.query(args.sql, args.params)),
    };
    const describe: AgentTool<Record<string, never>> = {
      name: "describe",
      description:
        `Describe the SQLite database ${this.ref}: tables with columns, types, keys, indexes, ` +
        `foreign keys, row estimates, views and triggers, as compact text.`,
      parameters: DESCRIBE_PARAMETERS,
      inputSchema: DESCRIBE_PARAMETERS,
      execute: () => this.describe({ format: "text" }),
    };
    return [query, describe];
  }
}

async function fixable<T>(run: () => Promise<T>): Promise<T | { error: string; detail: string }> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof PerSQLError && MODEL_FIXABLE.has(e.status)) {
      return { error: e.code, detail: e.message };
    }
    throw e;
  }
}
