// The server-bridge + client recipe end to end against a real `persql serve`, plus typed
// errors, token refresh, describe and agent tools.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { AuthError, InsufficientFundsError, PerSQL, PerSQLError } from "../dist/index.js";
import { startPersql, workspace } from "./server.mjs";

let server;
let ws;

before(async () => {
  server = await startPersql();
  ws = await workspace(server.baseURL, "acme");
});
after(() => server?.stop());

/** The app's server: provision the signed-in user (what an /api/db-token route does). */
async function bridge(userId) {
  const persql = new PerSQL({ token: ws, baseURL: server.baseURL });
  return persql.users.provision(userId, { template: "app-template" });
}

test("server bridge + client recipe: provision, insert, select, batch", async () => {
  const { token, namespaceSlug, database, expiresAt } = await bridge("user-1");
  assert.match(token, /^psql_live_/);
  assert.equal(namespaceSlug, "acme");
  assert.ok(Date.parse(expiresAt) > Date.now());

  const db = new PerSQL({ token, baseURL: server.baseURL, expiresAt }).database(`${namespaceSlug}/${database.slug}`);
  const inserted = await db.query("INSERT INTO entries (body) VALUES (?)", ["hello"]);
  assert.equal(inserted.meta.changes, 1);
  const { data, columns } = await db.query("SELECT * FROM entries ORDER BY id DESC");
  assert.deepEqual(data, [{ id: 1, body: "hello" }]);
  assert.deepEqual(columns, ["id", "body"]);
  const named = await db.query("SELECT :b AS b", { b: "named" });
  assert.deepEqual(named.data, [{ b: "named" }]);

  const results = await db.batch([
    { sql: "INSERT INTO entries (body) VALUES (?)", params: ["two"] },
    "SELECT count(*) AS n FROM entries",
  ]);
  assert.equal(results.length, 2);
  assert.deepEqual(results[1].data, [{ n: 2 }]);

  // All or nothing: the failing second statement undoes the first.
  await assert.rejects(
    db.batch(["INSERT INTO entries (body) VALUES ('lost')", "INSERT INTO nope VALUES (1)"]),
    (e) => e instanceof PerSQLError && e.status === 400 && e.code === "sql_error" && e.problem.statementIndex === 1,
  );
  assert.deepEqual((await db.query("SELECT count(*) AS n FROM entries")).data, [{ n: 2 }]);

  // Same subject, same database, fresh token.
  const again = await bridge("user-1");
  assert.equal(again.database.slug, database.slug);
  assert.notEqual(again.token, token);
});

test("errors are typed: AuthError, InsufficientFundsError, PerSQLError with the problem code", async () => {
  const { token, namespaceSlug, database } = await bridge("user-errors");
  const ref = `${namespaceSlug}/${database.slug}`;
  const db = new PerSQL({ token, baseURL: server.baseURL }).database(ref);
  await assert.rejects(db.query("CREATE TABLE t (a)"), (e) => {
    assert.ok(e instanceof PerSQLError && !(e instanceof AuthError));
    assert.equal(e.status, 403);
    assert.equal(e.code, "ddl_not_allowed");
    return true;
  });
  await assert.rejects(db.query("SELEC 1"), { status: 400, code: "sql_error" });

  const stranger = new PerSQL({ token: "psql_live_not_a_token", baseURL: server.baseURL }).database(ref);
  await assert.rejects(stranger.query("SELECT 1"), (e) => e instanceof AuthError && e.status === 401 && e.code === "invalid_token");
  const anonymous = new PerSQL({ baseURL: server.baseURL }).database(ref);
  await assert.rejects(anonymous.query("SELECT 1"), { name: "AuthError", code: "missing_token" });

  const broke = await workspace(server.baseURL, "broke", { funded: false });
  const poor = new PerSQL({ token: broke, baseURL: server.baseURL });
  await assert.rejects(poor.users.provision("someone"), (e) => {
    assert.ok(e instanceof InsufficientFundsError);
    assert.equal(e.status, 402);
    assert.equal(e.code, "insufficient_funds");
    assert.equal(e.namespace, "broke");
    return true;
  });

  assert.throws(() => new PerSQL({ token, baseURL: server.baseURL }).database("no-slash"), TypeError);
  const down = new PerSQL({ token, baseURL: "http://127.0.0.1:9" }).database(ref);
  await assert.rejects(down.query("SELECT 1"), { status: 0, code: "network_error" });
});

test("a lapsed token is re-fetched from the app's bridge, before the call or after a 401", async () => {
  const first = await bridge("user-refresh");
  const ref = `${first.namespaceSlug}/${first.database.slug}`;
  let fetched = 0;
  const refreshToken = async () => {
    fetched += 1;
    const { token, expiresAt } = await bridge("user-refresh");
    return { token, expiresAt };
  };
  // Known to have lapsed: refreshed before the first call.
  const lapsed = new PerSQL({ token: first.token, expiresAt: new Date(Date.now() - 1000), baseURL: server.baseURL, refreshToken });
  const { data } = await lapsed.database(ref).query("SELECT 1 AS one");
  assert.deepEqual(data, [{ one: 1 }]);
  assert.equal(fetched, 1);
  assert.ok(lapsed.expiresAt > new Date());
  // Refused by the server (revoked, expired early): one refresh, one retry.
  const refused = new PerSQL({ token: "psql_live_revoked", baseURL: server.baseURL, refreshToken });
  const parallel = await Promise.all([1, 2, 3].map((n) => refused.database(ref).query("SELECT ? AS n", [n])));
  assert.deepEqual(parallel.map((r) => r.data[0].n), [1, 2, 3]);
  assert.equal(fetched, 2, "concurrent calls share one refresh");
  // A bridge that hands out a bad token: the 401 surfaces after the one retry.
  const bad = new PerSQL({ token: "psql_live_x", baseURL: server.baseURL, refreshToken: async () => ({ token: "psql_live_y" }) });
  await assert.rejects(bad.database(ref).query("SELECT 1"), AuthError);
});

test("describe gives the schema as JSON or prompt text; asTools and tools() serve agents", async () => {
  const { token, namespaceSlug, database } = await bridge("user-agent");
  const db = new PerSQL({ token, baseURL: server.baseURL }).database(`${namespaceSlug}/${database.slug}`);
  await db.query("INSERT INTO entries (body) VALUES ('x')");
  const schema = await db.describe();
  assert.equal(schema.schemaVersion, 0);
  const entries = schema.tables.find((t) => t.name === "entries");
  assert.deepEqual(entries.columns.map((c) => [c.name, c.type, c.notNull, c.primaryKey]), [
    ["id", "INTEGER", false, 1],
    ["body", "TEXT", true, 0],
  ]);
  assert.deepEqual(entries.rowEstimate, { count: 1, method: "exact" });
  const text = await db.describe({ format: "text" });
  assert.match(text, /^table entries \(1 row\): id INTEGER PRIMARY KEY, body TEXT NOT NULL$/m);

  const [query, describe] = db.asTools();
  assert.equal(query.name, "query");
  assert.match(query.description, /table entries: id INTEGER PRIMARY KEY, body TEXT NOT NULL/);
  assert.deepEqual(query.parameters.required, ["sql"]);
  const rows = await query.execute({ sql: "SELECT body FROM entries WHERE id = ?", params: [1] });
  assert.deepEqual(rows.data, [{ body: "x" }]);
  // Mistakes a model can fix come back as data, not exceptions.
  assert.deepEqual(Object.keys(await query.execute({ sql: "DROP TABLE entries" })), ["error", "detail"]);
  assert.equal((await query.execute({ sql: "SELEC" })).error, "sql_error");
  assert.match(await describe.execute({}), /table entries/);

  const openai = await db.tools("openai");
  assert.equal(openai.role, "write");
  assert.equal(openai.tools[0].function.name, "query");
  assert.match(openai.tools[0].function.description, /table entries/);
  assert.equal(db.mcpURL, `${server.baseURL}/v1/databases/${namespaceSlug}/${database.slug}/mcp`);
});
