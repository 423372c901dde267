// beginConnect's PKCE and state, callbackCode, and completeConnect's token request as it
// goes over the wire (to a stand-in token endpoint; connect.test.mjs runs the same calls
// against the real OAuth server).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";

import { PerSQL, PerSQLError, pkceChallenge } from "../dist/index.js";

test("the S256 challenge matches RFC 7636 appendix B", async () => {
  assert.equal(
    await pkceChallenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
  );
});

test("beginConnect builds the authorize URL with a fresh verifier, its challenge and a state", async () => {
  const o = { clientId: "psqlrp_abc", redirectUri: "https://notes.example/callback", baseURL: "https://persql.example/" };
  const req = await PerSQL.beginConnect({ ...o, scope: "openid database", nonce: "n-1" });
  const url = new URL(req.url);
  assert.equal(url.origin + url.pathname, "https://persql.example/oauth/authorize");
  const q = url.searchParams;
  assert.equal(q.get("response_type"), "code");
  assert.equal(q.get("client_id"), "psqlrp_abc");
  assert.equal(q.get("redirect_uri"), "https://notes.example/callback");
  assert.equal(q.get("scope"), "openid database");
  assert.equal(q.get("nonce"), "n-1");
  assert.equal(q.get("code_challenge_method"), "S256");
  assert.equal(q.get("state"), req.state);
  assert.match(req.codeVerifier, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(q.get("code_challenge"), await pkceChallenge(req.codeVerifier));
  assert.ok(req.state.length >= 22);

  const other = await PerSQL.beginConnect(o);
  assert.notEqual(other.codeVerifier, req.codeVerifier);
  assert.notEqual(other.state, req.state);
  assert.equal(new URL(other.url).searchParams.get("scope"), "openid database");
  await assert.rejects(PerSQL.beginConnect({ ...o, clientId: "" }), TypeError);
});

test("callbackCode checks the state and surfaces errors", () => {
  const cb = "https://notes.example/callback?code=c-1&state=s-1";
  assert.equal(PerSQL.callbackCode(cb, "s-1"), "c-1");
  assert.throws(() => PerSQL.callbackCode(cb, "s-2"), { code: "state_mismatch" });
  assert.throws(() => PerSQL.callbackCode("https://n.example/cb?error=access_denied&state=s-1", "s-1"), {
    code: "access_denied",
  });
  assert.throws(() => PerSQL.callbackCode("https://n.example/cb?state=s-1", "s-1"), { code: "invalid_request" });
});

let server;
let baseURL;
const seen = [];
let answer;

before(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      seen.push({ method: req.method, url: req.url, type: req.headers["content-type"], auth: req.headers.authorization, body });
      res.writeHead(answer.status, { "content-type": "application/json" });
      res.end(JSON.stringify(answer.body));
    });
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  baseURL = `http://127.0.0.1:${server.address().port}`;
});
after(() => server.close());

test("completeConnect posts the form API.md describes and returns a client on the grant", async () => {
  answer = {
    status: 200,
    body: { access_token: "psql_live_granted", token_type: "Bearer", scope: "openid database", database: "alice/notes-app", id_token: "e.y.j", expires_in: 3600 },
  };
  const client = await PerSQL.completeConnect({
    baseURL,
    clientId: "psqlrp_abc",
    redirectUri: "https://notes.example/callback",
    code: "c-1",
    codeVerifier: "v".repeat(43),
  });
  const sent = seen.at(-1);
  assert.equal(sent.method, "POST");
  assert.equal(sent.url, "/oauth/token");
  assert.equal(sent.type, "application/x-www-form-urlencoded");
  assert.equal(sent.auth, undefined);
  assert.deepEqual(Object.fromEntries(new URLSearchParams(sent.body)), {
    grant_type: "authorization_code",
    code: "c-1",
    redirect_uri: "https://notes.example/callback",
    client_id: "psqlrp_abc",
    code_verifier: "v".repeat(43),
  });
  assert.equal(client.grant.database, "alice/notes-app");
  assert.equal(client.grant.accessToken, "psql_live_granted");
  assert.equal(client.grant.idToken, "e.y.j");
  assert.ok(client.expiresAt > new Date());
  assert.equal(client.database().ref, "alice/notes-app");

  // The granted token is what the client then sends.
  answer = { status: 200, body: { data: [], columns: [], meta: {} } };
  await client.database().query("SELECT 1");
  assert.equal(seen.at(-1).auth, "Bearer psql_live_granted");
  assert.equal(seen.at(-1).url, "/v1/databases/alice/notes-app/query");
});

test("completeConnect sends a confidential client's secret and maps OAuth errors", async () => {
  answer = { status: 400, body: { error: "invalid_grant", error_description: "the code was already used" } };
  const o = { baseURL, clientId: "psqlrp_c", redirectUri: "https://n.example/cb", code: "c", codeVerifier: "v".repeat(43), clientSecret: "s3cret" };
  await assert.rejects(PerSQL.completeConnect(o), (e) => {
    assert.ok(e instanceof PerSQLError);
    assert.equal(e.status, 400);
    assert.equal(e.code, "invalid_grant");
    assert.equal(e.message, "the code was already used");
    return true;
  });
  assert.equal(new URLSearchParams(seen.at(-1).body).get("client_secret"), "s3cret");
  answer = { status: 200, body: { token_type: "Bearer" } };
  await assert.rejects(PerSQL.completeConnect(o), { code: "invalid_token_response" });
});
