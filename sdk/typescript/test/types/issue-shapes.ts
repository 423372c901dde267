// Type-checked (never run) by test/types.test.mjs: the shapes the product documents and the
// SDK README show must compile unchanged under strict TypeScript against dist/*.d.ts.

import { AuthError, InsufficientFundsError, PerSQL, PerSQLError, type ConnectedClient } from "../../dist/index.js";

declare const process: { env: Record<string, string | undefined> };
declare const userId: string, baseURL: string, clientId: string, redirectUri: string, code: string;

// The block, verbatim.
const persql = new PerSQL({ token: process.env.PERSQL_TOKEN });          // server
const { token, namespaceSlug, database, expiresAt } =
  await persql.users.provision(userId, { template: "app-template" });
const db = new PerSQL({ token, baseURL }).database(`${namespaceSlug}/${database.slug}`);
await db.query("INSERT INTO entries (body) VALUES (?)", ["hello"]);
const { data } = await db.query("SELECT * FROM entries ORDER BY id DESC");
const req = await PerSQL.beginConnect({ clientId, redirectUri, scope: "openid database" });
const client = await PerSQL.completeConnect({ clientId, redirectUri, code, codeVerifier: req.codeVerifier });
client.grant.database; client.grant.accessToken; client.grant.idToken;
await db.describe(); db.asTools();

// What the README's connect recipe reads off the grant.
const granted: string = client.grant.database;
const access: string = client.grant.accessToken;
const idToken: string | undefined = client.grant.idToken;
const connected: ConnectedClient = client;
const notes = connected.database();
await notes.query("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
const later = new PerSQL({ token: access, baseURL }).database(granted);
const code2: string = PerSQL.callbackCode("https://notes.example/callback?code=c&state=s", req.state);

try {
  await later.query("SELECT 1");
} catch (e) {
  if (e instanceof AuthError) e.code satisfies string;
  else if (e instanceof InsufficientFundsError) e.namespace satisfies string | undefined;
  else if (e instanceof PerSQLError) e.status satisfies number;
}

export { data, expiresAt, idToken, code2 };
