/**
 * "Connect with PerSQL": OAuth 2.1 authorization code with PKCE (S256) and state, using
 * Web Crypto only.
 */

import { PerSQLError } from "./errors.js";

/** Options of `PerSQL.beginConnect`. */
export interface BeginConnectOptions {
  /** The app's `psqlrp_…` client id. */
  clientId: string;
  /** Exactly one of the app's registered redirect URIs. */
  redirectUri: string;
  /** Default `"openid database"`. */
  scope?: string | undefined;
  /** PerSQL's URL; defaults to `PERSQL_BASE_URL`. */
  baseURL?: string | undefined;
  /** An OpenID Connect nonce to find in the ID token (optional). */
  nonce?: string | undefined;
}

/** Where to send the user, and what to keep (e.g. in the session) until they come back. */
export interface ConnectRequest {
  /** The `/oauth/authorize` URL to redirect the user to. */
  url: string;
  /** Keep secret; pass to `completeConnect`. */
  codeVerifier: string;
  /** Compare with the `state` the redirect brings back (see `PerSQL.callbackCode`). */
  state: string;
}

/** Options of `PerSQL.completeConnect`. */
export interface CompleteConnectOptions {
  clientId: string;
  redirectUri: string;
  /** The `code` the redirect brought back. */
  code: string;
  /** `ConnectRequest.codeVerifier`. */
  codeVerifier: string;
  /** Confidential clients only, and only on a server. */
  clientSecret?: string | undefined;
  baseURL?: string | undefined;
  fetch?: ((input: string, init?: RequestInit) => Promise<Response>) | undefined;
}

/** What the user granted the app. */
export interface Grant {
  /** `ns/db`: the app's private database in the user's namespace. */
  database: string;
  /** `psql_live_…`, admin on that one database. */
  accessToken: string;
  /** The OpenID Connect ID token (JWT) when `openid` was in the scope. */
  idToken: string | undefined;
  scope: string;
  tokenType: string;
  /** When the access token lapses, if the server said. */
  expiresAt: Date | undefined;
}

function base64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomToken(bytes = 32): string {
  const buf = new Uint8Array(bytes);
  crypto.getRandomValues(buf);
  return base64url(buf);
}

/** The S256 code challenge of a verifier: BASE64URL(SHA-256(verifier)) (RFC 7636 §4.2). */
export async function pkceChallenge(codeVerifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(codeVerifier));
  return base64url(new Uint8Array(digest));
}

/** A fresh verifier (43 characters of 256 random bits), its challenge and a state. */
export async function buildConnectRequest(baseURL: string, o: BeginConnectOptions): Promise<ConnectRequest> {
  if (!o.clientId || !o.redirectUri) {
    throw new TypeError("PerSQL.beginConnect: clientId and redirectUri are required");
  }
  const codeVerifier = randomToken(32);
  const state = randomToken(16);
  const url = new URL(`${baseURL}/oauth/authorize`);
  const q = url.searchParams;
  q.set("response_type", "code");
  q.set("client_id", o.clientId);
  q.set("redirect_uri", o.redirectUri);
  q.set("scope", o.scope ?? "openid database");
  q.set("state", state);
  q.set("code_challenge", await pkceChallenge(codeVerifier));
  q.set("code_challenge_method", "S256");
  if (o.nonce) q.set("nonce", o.nonce);
  return { url: url.toString(), codeVerifier, state };
}

/** The `code` of a redirect back to the app, after checking its `state`. */
export function callbackCode(callbackURL: string | URL, expectedState: string): string {
  const q = new URL(callbackURL).searchParams;
  const error = q.get("error");
  if (error) {
    throw new PerSQLError(400, error, q.get("error_description") ?? `authorization failed: ${error}`);
  }
  if (!expectedState || q.get("state") !== expectedState) {
    throw new PerSQLError(400, "state_mismatch", "the state of the redirect is not the one sent");
  }
  const code = q.get("code");
  if (!code) throw new PerSQLError(400, "invalid_request", "the redirect carries no code");
  return code;
}

/** The token endpoint's answer as a `Grant`. */
export function grantOf(body: Record<string, unknown>): Grant {
  const str = (k: string) => (typeof body[k] === "string" ? (body[k] as string) : undefined);
  const accessToken = str("access_token");
  const database = str("database");
  if (!accessToken || !database) {
    throw new PerSQLError(502, "invalid_token_response", "the token endpoint answered without access_token/database");
  }
  const expiresIn = typeof body["expires_in"] === "number" ? (body["expires_in"] as number) : undefined;
  return {
    database,
    accessToken,
    idToken: str("id_token"),
    scope: str("scope") ?? "",
    tokenType: str("token_type") ?? "Bearer",
    expiresAt: expiresIn === undefined ? undefined : new Date(Date.now() + expiresIn * 1000),
  };
}
