/**
 * Typed errors: every failed call throws a `PerSQLError` carrying the HTTP status and the
 * problem `code` (RFC 9457 `application/problem+json`, or an OAuth `error`).
 */

/** The problem document PerSQL answers errors with. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  /** For 402: the namespace whose balance is used up. */
  namespace?: string;
  /** For batch failures: the index of the statement that failed. */
  statementIndex?: number;
  [key: string]: unknown;
}

/** A call PerSQL refused or could not serve. */
export class PerSQLError extends Error {
  /** HTTP status (0 when the server could not be reached). */
  readonly status: number;
  /** Stable machine code, e.g. `sql_error`, `ddl_not_allowed`, `token_expired`. */
  readonly code: string;
  /** The problem document as received (may be empty). */
  readonly problem: Problem;

  constructor(status: number, code: string, message: string, problem: Problem = {}) {
    super(message);
    this.name = "PerSQLError";
    this.status = status;
    this.code = code;
    this.problem = problem;
  }
}

/** 401: the token is missing, unknown, revoked (`invalid_token`) or expired (`token_expired`). */
export class AuthError extends PerSQLError {
  constructor(status: number, code: string, message: string, problem: Problem = {}) {
    super(status, code, message, problem);
    this.name = "AuthError";
  }
}

/** 402: the namespace billed for the call has no funds left (`insufficient_funds`). */
export class InsufficientFundsError extends PerSQLError {
  /** The namespace to top up. */
  readonly namespace: string | undefined;
  constructor(status: number, code: string, message: string, problem: Problem = {}) {
    super(status, code, message, problem);
    this.name = "InsufficientFundsError";
    this.namespace = typeof problem.namespace === "string" ? problem.namespace : undefined;
  }
}

/** The right error class for a status and its problem body. */
export function errorFor(status: number, problem: Problem): PerSQLError {
  const oauthError = typeof problem["error"] === "string" ? (problem["error"] as string) : undefined;
  const code = problem.code ?? oauthError ?? `http_${status}`;
  const oauthDetail =
    typeof problem["error_description"] === "string" ? (problem["error_description"] as string) : undefined;
  const message = problem.detail ?? oauthDetail ?? problem.title ?? `PerSQL answered HTTP ${status}`;
  if (status === 401) return new AuthError(status, code, message, problem);
  if (status === 402) return new InsufficientFundsError(status, code, message, problem);
  return new PerSQLError(status, code, message, problem);
}
