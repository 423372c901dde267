/**
 * The HTTP session under every call: base URL, Bearer token with its expiry, the refresh
 * hook, and problem+json errors turned into typed errors.
 */

import { PerSQLError, errorFor, type Problem } from "./errors.js";

/** `fetch` or anything shaped like it (tests, instrumented clients). */
export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** A token and when it lapses, as `users.provision` (and an app's token bridge) return it. */
export interface TokenGrant {
  token: string;
  /** RFC 3339 time or a `Date`; absent or null for tokens that do not expire. */
  expiresAt?: string | Date | null | undefined;
}

/** How a client finds PerSQL and authenticates. */
export interface ClientOptions {
  /** `psql_ws_…` (server side only), `psql_live_…` (one database), or `psql_admin_…`. */
  token?: string | undefined;
  /** PerSQL's URL; defaults to the `PERSQL_BASE_URL` environment variable where there is one. */
  baseURL?: string | undefined;
  /** When `token` lapses (from `users.provision`'s `expiresAt`). */
  expiresAt?: string | Date | null | undefined;
  /**
   * Fetches a fresh token when the current one lapses (before a call once `expiresAt` is
   * near, and once more after a 401), e.g. from the app's own `/api/db-token` bridge.
   */
  refreshToken?: (() => Promise<TokenGrant>) | undefined;
  /** Refresh this many milliseconds before `expiresAt` (default 30 000). */
  refreshLeewayMs?: number | undefined;
  /** A `fetch` to use instead of the global one. */
  fetch?: FetchLike | undefined;
}

/** `PERSQL_BASE_URL` from Node's, Bun's or Deno's environment, when readable. */
export function envBaseURL(): string | undefined {
  const g = globalThis as {
    process?: { env?: Record<string, string | undefined> };
    Deno?: { env?: { get(name: string): string | undefined } };
  };
  try {
    return g.process?.env?.["PERSQL_BASE_URL"] ?? g.Deno?.env?.get("PERSQL_BASE_URL") ?? undefined;
  } catch {
    return undefined; // Deno without --allow-env
  }
}

export function resolveBaseURL(baseURL: string | undefined): string {
  const url = baseURL ?? envBaseURL();
  if (!url) {
    throw new TypeError("PerSQL: pass baseURL or set PERSQL_BASE_URL");
  }
  return url.replace(/\/+$/, "");
}

function toMillis(t: string | Date | null | undefined): number | undefined {
  if (t === null || t === undefined) return undefined;
  const ms = t instanceof Date ? t.getTime() : Date.parse(t);
  return Number.isNaN(ms) ? undefined : ms;
}

/** One request's shape. */
export interface RequestSpec {
  method: "GET" | "POST" | "DELETE";
  path: string;
  json?: unknown;
  form?: Record<string, string>;
  /** Send the token (default true). */
  auth?: boolean;
}

export class Session {
  readonly baseURL: string;
  #token: string | undefined;
  #expiresAt: number | undefined;
  #refreshing: Promise<void> | undefined;
  readonly #refresh: (() => Promise<TokenGrant>) | undefined;
  readonly #leeway: number;
  readonly #fetch: FetchLike;

  constructor(options: ClientOptions) {
    this.baseURL = resolveBaseURL(options.baseURL);
    this.#token = options.token;
    this.#expiresAt = toMillis(options.expiresAt);
    this.#refresh = options.refreshToken;
    this.#leeway = options.refreshLeewayMs ?? 30_000;
    const f = options.fetch;
    // Called through a closure: browsers refuse a `fetch` detached from `globalThis`.
    this.#fetch = f ?? ((input, init) => globalThis.fetch(input, init));
  }

  get token(): string | undefined {
    return this.#token;
  }

  get expiresAt(): Date | undefined {
    return this.#expiresAt === undefined ? undefined : new Date(this.#expiresAt);
  }

  /** True when the token is known to lapse within the refresh leeway. */
  get expiring(): boolean {
    return this.#expiresAt !== undefined && Date.now() >= this.#expiresAt - this.#leeway;
  }

  /** Replaces the token (and its expiry). */
  setToken(grant: TokenGrant): void {
    this.#token = grant.token;
    this.#expiresAt = toMillis(grant.expiresAt);
  }

  /** Runs the refresh hook once, however many calls wait on it. */
  async refresh(): Promise<void> {
    const hook = this.#refresh;
    if (!hook) return;
    this.#refreshing ??= (async () => {
      try {
        const grant = await hook();
        if (!grant || typeof grant.token !== "string") {
          throw new TypeError("PerSQL: refreshToken must resolve to {token, expiresAt}");
        }
        this.setToken(grant);
      } finally {
        this.#refreshing = undefined;
      }
    })();
    return this.#refreshing;
  }

  /** Sends `spec`; answers the parsed JSON (or text) body, or throws a `PerSQLError`. */
  async request<T>(spec: RequestSpec): Promise<T> {
    const auth = spec.auth ?? true;
    if (auth && this.#refresh && this.expiring) await this.refresh();
    const sent = this.#token;
    let res = await this.#send(spec, auth);
    if (res.status === 401 && auth && this.#refresh) {
      await res.body?.cancel();
      // Another call may have refreshed meanwhile: then its token is the one to retry with.
      if (this.#token === sent) await this.refresh();
      res = await this.#send(spec, auth);
    }
    return parse<T>(res);
  }

  async #send(spec: RequestSpec, auth: boolean): Promise<Response> {
    const headers: Record<string, string> = { accept: "application/json" };
    let body: string | undefined;
    if (spec.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(spec.json);
    } else if (spec.form) {
      headers["content-type"] = "application/x-www-form-urlencoded";
      body = new URLSearchParams(spec.form).toString();
    }
    if (auth && this.#token) headers["authorization"] = `Bearer ${this.#token}`;
    const init: RequestInit = { method: spec.method, headers };
    if (body !== undefined) init.body = body;
    try {
      return await this.#fetch(this.baseURL + spec.path, init);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      throw new PerSQLError(0, "network_error", `PerSQL unreachable at ${this.baseURL}: ${message}`);
    }
  }
}

async function parse<T>(res: Response): Promise<T> {
  const type = res.headers.get("content-type") ?? "";
  const isJson = type.includes("json");
  if (res.ok) {
    return (isJson ? await res.json() : await res.text()) as T;
  }
  let problem: Problem = {};
  try {
    if (isJson) {
      problem = (await res.json()) as Problem;
    } else {
      const text = await res.text();
      if (text) problem = { detail: text };
    }
  } catch {
    // An unreadable error body: the status still says what happened.
  }
  throw errorFor(res.status, problem);
}
