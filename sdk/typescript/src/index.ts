/**
 * @persql/sdk: a SQLite database per user, from servers, browsers, Workers, Deno and AI
 * agents. Zero dependencies: `fetch` and Web Crypto.
 */

export { PerSQL, type ConnectedClient, type ProvisionOptions, type Provisioned } from "./client.js";
export {
  Database,
  type AgentTool,
  type Params,
  type QueryMeta,
  type QueryResult,
  type Row,
  type Statement,
  type ToolDefinitions,
  type ToolFormat,
  type Value,
} from "./database.js";
export { AuthError, InsufficientFundsError, PerSQLError, type Problem } from "./errors.js";
export type { ClientOptions, FetchLike, TokenGrant } from "./http.js";
export {
  pkceChallenge,
  type BeginConnectOptions,
  type CompleteConnectOptions,
  type ConnectRequest,
  type Grant,
} from "./oauth.js";
export type { Column, ForeignKey, Index, RowEstimate, Schema, Table } from "./schema.js";
