// "Connect with PerSQL" end to end against a real `persql serve`: the SDK's beginConnect /
// completeConnect around the real OAuth server (a person played with fetch signs up and
// approves), the ID token checked against /oauth/jwks with Web Crypto, the user-owned notes
// app recipe (list, export, disconnect, reconnect), and the token endpoint's refusals as
// the SDK's typed errors.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { AuthError, PerSQL, PerSQLError } from "../dist/index.js";
import { Person } from "./person.mjs";
import { ADMIN, freePort, startPersql, workspace } from "./server.mjs";

let server;
let baseURL;
let clientId;
let redirectUri;

before(async () => {
  server = await startPersql();
  baseURL = server.baseURL;
  // The developer's workspace, topped up by the operator: the app's calls (and the
  // provision of each person's app database) bill the app's namespace.
  const ws = await workspace(baseURL, "notesdev");
  // The app's callback: nothing needs to listen there, the test reads `Location`.
  redirectUri = `http://127.0.0.1:${await freePort()}/callback`;
  clientId = await registerApp(ws);
});
after(() => server?.stop());

/** `POST /v1/apps` with a workspace token: a public app's client id. */
async function registerApp(ws) {
  const res = await fetch(`${baseURL}/v1/apps`, {
    method: "POST",
    headers: { authorization: `Bearer ${ws}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "Notes <b>App</b>", type: "public", redirectUris: [redirectUri] }),
  });
  const app = await res.json();
  assert.equal(res.status, 201, JSON.stringify(app));
  assert.match(app.clientId, /^psqlrp_/);
  assert.equal(app.clientSecret, undefined, "public apps have no secret");
  return app.clientId;
}

/** `beginConnect`, then the person's part; answers the connect request and the redirect. */
async function authorize(person, { email, nonce, decision = "approve" } = {}) {
  const req = await PerSQL.beginConnect({ clientId, redirectUri, scope: "openid database", baseURL, nonce });
  assert.ok(req.url.startsWith(`${baseURL}/oauth/authorize?`), req.url);
  const consent = email ? await person.signUpThrough(req.url, email) : await person.get(req.url);
  assert.match(consent.text, /Notes &lt;b&gt;App&lt;\/b&gt; wants to store its data/);
  const redirect = await person.decide(consent, decision);
  return { req, location: redirect.location };
}

/** The whole flow: the app gets its client on the person's database. */
async function connect(person, options = {}) {
  const { req, location } = await authorize(person, options);
  const code = PerSQL.callbackCode(location, req.state);
  return PerSQL.completeConnect({ clientId, redirectUri, code, codeVerifier: req.codeVerifier, baseURL });
}

const b64urlBytes = (s) => new Uint8Array(Buffer.from(s, "base64url"));
const b64urlJSON = (s) => JSON.parse(Buffer.from(s, "base64url").toString("utf8"));

/** Verifies a JWS compact token against a JWK Set with Web Crypto; answers its claims. */
async function verifyJWT(jwt, jwks) {
  const [h, p, s] = jwt.split(".");
  const header = b64urlJSON(h);
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `a key with kid ${header.kid} in ${JSON.stringify(jwks)}`);
  const algs = {
    ES256: [{ name: "ECDSA", namedCurve: "P-256" }, { name: "ECDSA", hash: "SHA-256" }],
    ES384: [{ name: "ECDSA", namedCurve: "P-384" }, { name: "ECDSA", hash: "SHA-384" }],
    RS256: [{ name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, { name: "RSASSA-PKCS1-v1_5" }],
    EdDSA: [{ name: "Ed25519" }, { name: "Ed25519" }],
  };
  assert.ok(algs[header.alg], `a supported alg: ${header.alg}`);
  if (jwk.alg) assert.equal(jwk.alg, header.alg);
  const [importAlg, verifyAlg] = algs[header.alg];
  const { alg: _a, use: _u, kid: _k, ...material } = jwk;
  const key = await crypto.subtle.importKey("jwk", material, importAlg, false, ["verify"]);
  const signed = (payload) => new TextEncoder().encode(`${h}.${payload}`);
  const ok = await crypto.subtle.verify(verifyAlg, key, b64urlBytes(s), signed(p));
  // The check can fail: the same signature over other claims does not verify.
  const forged = Buffer.from(JSON.stringify({ ...b64urlJSON(p), sub: "someone-else" })).toString("base64url");
  const forgedOk = await crypto.subtle.verify(verifyAlg, key, b64urlBytes(s), signed(forged));
  return { header, claims: b64urlJSON(p), ok, forgedOk };
}

test("full OAuth flow: sign up, consent, completeConnect, a verified ID token, admin SQL", async () => {
  const person = new Person(baseURL);
  const nonce = "n-" + crypto.randomUUID();
  const { req, location } = await authorize(person, { email: "ada@example.com", nonce });

  // Back to the app's redirect URI with a code and the state it sent.
  const back = new URL(location);
  assert.equal(back.origin + back.pathname, redirectUri);
  assert.equal(back.searchParams.get("state"), req.state);
  const code = back.searchParams.get("code");
  assert.ok(code && code.length >= 32, `a code: ${location}`);
  assert.equal(PerSQL.callbackCode(location, req.state), code);

  const client = await PerSQL.completeConnect({ clientId, redirectUri, code, codeVerifier: req.codeVerifier, baseURL });
  const { grant } = client;
  const ns = await person.namespace();
  assert.match(ns, /^acct-/);
  assert.match(grant.database, new RegExp(`^${ns}/u_[0-9a-f]+$`));
  assert.match(grant.accessToken, /^psql_live_/);
  assert.equal(grant.tokenType, "Bearer");
  assert.equal(grant.scope, "openid database");
  assert.equal(grant.expiresAt, undefined, "app tokens do not expire");
  assert.equal(client.baseURL, baseURL);

  // The ID token: signed with a key of /oauth/jwks (found through discovery).
  const discovery = await (await fetch(`${baseURL}/.well-known/openid-configuration`)).json();
  assert.equal(discovery.issuer, baseURL);
  assert.equal(discovery.jwks_uri, `${baseURL}/oauth/jwks`);
  const jwks = await (await fetch(discovery.jwks_uri)).json();
  assert.equal(grant.idToken.split(".").length, 3);
  const { header, claims, ok, forgedOk } = await verifyJWT(grant.idToken, jwks);
  assert.ok(discovery.id_token_signing_alg_values_supported.includes(header.alg), header.alg);
  assert.equal(ok, true, "the ID token's signature verifies");
  assert.equal(forgedOk, false, "a changed payload does not");
  assert.equal(claims.iss, baseURL);
  assert.deepEqual([claims.aud].flat(), [clientId]);
  assert.equal(claims.nonce, nonce);
  assert.match(claims.sub, /^[0-9a-f]{32}$/, "a pairwise subject");
  assert.ok(Number.isInteger(claims.exp) && Number.isInteger(claims.iat) && claims.exp > claims.iat);
  assert.ok(claims.exp * 1000 > Date.now(), "not expired");
  assert.ok(!("email" in claims), "no email for the app");

  // Admin on the granted database: DDL, writes, reads.
  const db = client.database();
  assert.equal(db.ref, grant.database);
  await db.query("CREATE TABLE profile (id INTEGER PRIMARY KEY, name TEXT NOT NULL)");
  const ins = await db.query("INSERT INTO profile (name) VALUES (?), (?)", ["Ada", "Lovelace"]);
  assert.equal(ins.meta.changes, 2);
  const { data, columns } = await db.query("SELECT id, name FROM profile ORDER BY id");
  assert.deepEqual(columns, ["id", "name"]);
  assert.deepEqual(data, [
    { id: 1, name: "Ada" },
    { id: 2, name: "Lovelace" },
  ]);
  // ...and nothing else of the account.
  await assert.rejects(client.database(`${ns}/other`).query("SELECT 1"), {
    status: 404,
    code: "database_not_found",
  });
});

test("user-owned notes app: write notes, list, export, disconnect (401), reconnect to the same notes", async () => {
  const person = new Person(baseURL);
  const first = await connect(person, { email: "bo@example.com" });
  const ref = first.grant.database;

  // The app: its schema and the person's notes.
  const notes = first.database();
  await notes.query("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
  await notes.batch([
    { sql: "INSERT INTO notes (body) VALUES (?)", params: ["buy oat milk"] },
    { sql: "INSERT INTO notes (body) VALUES (?)", params: ["call the plumber"] },
  ]);
  const written = await notes.query("SELECT id, body FROM notes ORDER BY id");
  assert.deepEqual(written.data, [
    { id: 1, body: "buy oat milk" },
    { id: 2, body: "call the plumber" },
  ]);

  // The person: connected apps, with the session and with a personal token.
  const listed = await person.json("GET", "/v1/account/apps");
  assert.equal(listed.status, 200, JSON.stringify(listed.body));
  assert.equal(listed.body.apps.length, 1);
  assert.equal(listed.body.apps[0].clientId, clientId);
  assert.equal(listed.body.apps[0].name, "Notes <b>App</b>");
  assert.equal(listed.body.apps[0].database, ref);
  assert.ok(!Number.isNaN(Date.parse(listed.body.apps[0].connectedAt)));
  const personal = await person.personalToken();
  assert.match(personal, /^psql_ws_/);
  const viaToken = await new Person(baseURL).json("GET", "/v1/account/apps", personal);
  assert.equal(viaToken.status, 200);
  assert.deepEqual(viaToken.body.apps.map((a) => [a.clientId, a.database]), [[clientId, ref]]);
  // Not for the app's token, nor for nobody.
  assert.equal((await new Person(baseURL).json("GET", "/v1/account/apps", first.grant.accessToken)).status, 403);
  const anonymous = await new Person(baseURL).json("GET", "/v1/account/apps");
  assert.equal(anonymous.status, 401);
  assert.equal(anonymous.body.code, "not_signed_in");

  // Export: a SQLite file holding the notes (from the account page and the API).
  for (const [who, path, bearer] of [
    ["session", `/account/apps/${clientId}/export`, undefined],
    ["personal token", `/v1/databases/${ref}/export`, personal],
  ]) {
    const file = await person.request(path, { bearer });
    assert.equal(file.status, 200, `${who}: ${file.text.slice(0, 200)}`);
    assert.equal(file.type, "application/vnd.sqlite3", who);
    assert.equal(Buffer.from(file.bytes.subarray(0, 16)).toString("latin1"), "SQLite format 3\0", who);
    const raw = Buffer.from(file.bytes).toString("latin1");
    assert.ok(raw.includes("CREATE TABLE notes") && raw.includes("buy oat milk") && raw.includes("call the plumber"), who);
  }

  // Disconnect: the app's token stops working at once; the data stays.
  const gone = await person.request(`/v1/account/apps/${clientId}`, { method: "DELETE" });
  assert.equal(gone.status, 204, gone.text);
  await assert.rejects(notes.query("SELECT count(*) AS n FROM notes"), (e) => {
    assert.ok(e instanceof AuthError, `${e}`);
    assert.equal(e.status, 401);
    assert.equal(e.code, "invalid_token");
    return true;
  });
  assert.deepEqual((await person.json("GET", "/v1/account/apps")).body.apps, []);
  const again = await person.request(`/v1/account/apps/${clientId}`, { method: "DELETE" });
  assert.equal(again.status, 404);
  assert.equal(JSON.parse(again.text).code, "app_not_connected");

  // Connect again (already signed in: straight to consent): the same database, the notes kept.
  const second = await connect(person);
  assert.equal(second.grant.database, ref);
  assert.notEqual(second.grant.accessToken, first.grant.accessToken);
  const kept = await second.database().query("SELECT body FROM notes ORDER BY id");
  assert.deepEqual(kept.data.map((r) => r.body), ["buy oat milk", "call the plumber"]);
  await second.database().query("INSERT INTO notes (body) VALUES (?)", ["back again"]);
  assert.deepEqual((await second.database().query("SELECT count(*) AS n FROM notes")).data, [{ n: 3 }]);
  await assert.rejects(notes.query("SELECT 1"), AuthError);
  assert.deepEqual((await person.json("GET", "/v1/account/apps")).body.apps.map((a) => a.database), [ref]);
});

test("completeConnect refusals are typed: wrong verifier, reused code (invalid_grant); denial", async () => {
  const person = new Person(baseURL);
  const { req, location } = await authorize(person, { email: "cy@example.com" });
  const code = PerSQL.callbackCode(location, req.state);
  const o = { clientId, redirectUri, code, baseURL };

  // Another verifier: refused, and the code is not used up.
  const other = await PerSQL.beginConnect({ clientId, redirectUri, baseURL });
  await assert.rejects(PerSQL.completeConnect({ ...o, codeVerifier: other.codeVerifier }), (e) => {
    assert.ok(e instanceof PerSQLError && !(e instanceof AuthError), `${e}`);
    assert.equal(e.status, 400);
    assert.equal(e.code, "invalid_grant");
    assert.equal(e.problem.error, "invalid_grant");
    assert.ok(e.message.length > 0 && e.message !== "PerSQL answered HTTP 400", e.message);
    return true;
  });
  const client = await PerSQL.completeConnect({ ...o, codeVerifier: req.codeVerifier });
  assert.deepEqual((await client.database().query("SELECT 1 AS one")).data, [{ one: 1 }]);

  // The code again: invalid_grant, and the token it gave is revoked (RFC 6749 §4.1.2).
  await assert.rejects(PerSQL.completeConnect({ ...o, codeVerifier: req.codeVerifier }), {
    name: "PerSQLError",
    status: 400,
    code: "invalid_grant",
  });
  await assert.rejects(client.database().query("SELECT 1"), { name: "AuthError", status: 401, code: "invalid_token" });

  // Other mistakes the token endpoint names: another redirect URI, an unknown client.
  const fresh = await authorize(person);
  const freshCode = PerSQL.callbackCode(fresh.location, fresh.req.state);
  await assert.rejects(
    PerSQL.completeConnect({ ...o, code: freshCode, redirectUri: `${redirectUri}2`, codeVerifier: fresh.req.codeVerifier }),
    { status: 400, code: "invalid_grant" },
  );
  await assert.rejects(
    PerSQL.completeConnect({ ...o, code: freshCode, clientId: "psqlrp_unknown", codeVerifier: fresh.req.codeVerifier }),
    (e) => e instanceof AuthError && e.status === 401 && e.code === "invalid_client",
  );

  // The person says no: the redirect carries access_denied, which callbackCode throws.
  const denied = await authorize(person, { decision: "deny" });
  assert.equal(new URL(denied.location).searchParams.get("state"), denied.req.state);
  assert.throws(() => PerSQL.callbackCode(denied.location, denied.req.state), (e) => {
    assert.ok(e instanceof PerSQLError);
    assert.equal(e.code, "access_denied");
    return true;
  });
});

test("an app without funds cannot take a database until the operator tops it up", async () => {
  const broke = await workspace(baseURL, "brokedev", { funded: false });
  const brokeId = await registerApp(broke);
  const person = new Person(baseURL);
  const req = await PerSQL.beginConnect({ clientId: brokeId, redirectUri, baseURL });
  const consent = await person.signUpThrough(req.url, "di@example.com");
  const refused = await person.submit(consent, "/oauth/authorize", { decision: "approve" });
  assert.equal(refused.status, 402, refused.text);
  assert.equal(refused.location, null, "no code, no redirect");
  assert.match(refused.text, /balance is used up/);
  assert.deepEqual((await person.json("GET", "/v1/account/apps")).body.apps, []);

  const topup = await fetch(`${baseURL}/v1/admin/namespaces/brokedev/topups`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: JSON.stringify({ amount: "1.00", reference: "brokedev-1" }),
  });
  assert.equal(topup.status, 200, await topup.text());
  const approved = await person.decide(await person.get(req.url), "approve");
  const code = PerSQL.callbackCode(approved.location, req.state);
  const client = await PerSQL.completeConnect({ clientId: brokeId, redirectUri, code, codeVerifier: req.codeVerifier, baseURL });
  await client.database().query("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)");
  assert.equal((await client.database().query("INSERT INTO notes (body) VALUES ('paid')")).meta.changes, 1);
});
