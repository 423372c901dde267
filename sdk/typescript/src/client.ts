/**
 * `PerSQL`: the client. Server side with a workspace token (`users.provision`), client side
 * with a database token (`database(…).query`), and the OAuth connect flow.
 */

import { Database } from "./database.js";
import { Session, resolveBaseURL, type ClientOptions } from "./http.js";
import {
  buildConnectRequest,
  callbackCode,
  grantOf,
  type BeginConnectOptions,
  type CompleteConnectOptions,
  type ConnectRequest,
  type Grant,
} from "./oauth.js";

/** Options of `users.provision`. */
export interface ProvisionOptions {
  /** The template database whose schema a new user's database gets. */
  template?: string | undefined;
}

/** A user's database and a fresh token for it. */
export interface Provisioned {
  /** `psql_live_…`, write access to that one database; hand it to the user's client. */
  token: string;
  namespaceSlug: string;
  database: { id: string; slug: string; template: string | null; createdAt: string };
  /** RFC 3339: when `token` lapses (re-provision for a fresh one). */
  expiresAt: string;
}

/** A client made by `PerSQL.completeConnect`: `grant` is always there. */
export type ConnectedClient = PerSQL & { readonly grant: Grant };

export class PerSQL {
  /** Workspace calls (workspace token, server side only). */
  readonly users: { provision(subject: string, options?: ProvisionOptions): Promise<Provisioned> };
  /** Set on clients made by `completeConnect`: what the user granted. */
  readonly grant: Grant | undefined;
  readonly #session: Session;

  constructor(options: ClientOptions = {}, grant?: Grant) {
    this.#session = new Session(options);
    this.grant = grant;
    this.users = {
      provision: (subject, o) => {
        const json: { subject: string; template?: string } = { subject };
        if (o?.template !== undefined) json.template = o.template;
        return this.#session.request<Provisioned>({ method: "POST", path: "/v1/users/provision", json });
      },
    };
  }

  /** PerSQL's base URL. */
  get baseURL(): string {
    return this.#session.baseURL;
  }

  /** When the current token lapses, if known. */
  get expiresAt(): Date | undefined {
    return this.#session.expiresAt;
  }

  /** Replaces the token, e.g. with one the app's bridge handed out. */
  setToken(token: string, expiresAt?: string | Date | null): void {
    this.#session.setToken({ token, expiresAt });
  }

  /** The database `ns/db` (default: the granted one, after `completeConnect`). */
  database(ref?: string): Database {
    const r = ref ?? this.grant?.database;
    if (!r) throw new TypeError("PerSQL.database: name the database as \"namespace/database\"");
    return new Database(this.#session, r);
  }

  /** Starts "Connect with PerSQL": the URL to send the user to, with PKCE and state. */
  static beginConnect(options: BeginConnectOptions): Promise<ConnectRequest> {
    return buildConnectRequest(resolveBaseURL(options.baseURL), options);
  }

  /** The `code` of the redirect back, after checking `state` (throws on `error=`). */
  static callbackCode(callbackURL: string | URL, expectedState: string): string {
    return callbackCode(callbackURL, expectedState);
  }

  /** Exchanges the code for the grant; returns a client on the granted database. */
  static async completeConnect(options: CompleteConnectOptions): Promise<ConnectedClient> {
    const session = new Session({ baseURL: options.baseURL, fetch: options.fetch });
    const form: Record<string, string> = {
      grant_type: "authorization_code",
      code: options.code,
      redirect_uri: options.redirectUri,
      client_id: options.clientId,
      code_verifier: options.codeVerifier,
    };
    if (options.clientSecret) form["client_secret"] = options.clientSecret;
    const body = await session.request<Record<string, unknown>>({
      method: "POST",
      path: "/oauth/token",
      form,
      auth: false,
    });
    const grant = grantOf(body);
    return new PerSQL(
      { baseURL: session.baseURL, token: grant.accessToken, expiresAt: grant.expiresAt, fetch: options.fetch },
      grant,
    ) as ConnectedClient;
  }
}
