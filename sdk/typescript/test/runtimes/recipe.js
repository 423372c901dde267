// The server-bridge recipe as a Workers fetch handler or a Deno script runs it: provision the
// user with the workspace token, then query as that user. Plain JS, no runtime APIs beyond
// fetch and Web Crypto, so the same module is loaded by workerd and by Deno.
//
// `sdk` is the built SDK's module (dist/index.js), passed in by the runtime's entry point.

export async function recipe(sdk, { baseURL, workspaceToken, userId }) {
  const { PerSQL, PerSQLError, AuthError } = sdk;
  const server = new PerSQL({ token: workspaceToken, baseURL });
  const { token, namespaceSlug, database, expiresAt } = await server.users.provision(userId, {
    template: "app-template",
  });
  const db = new PerSQL({ token, baseURL, expiresAt }).database(`${namespaceSlug}/${database.slug}`);
  const inserted = await db.query("INSERT INTO entries (body) VALUES (?)", [`hello from ${userId}`]);
  const { data, columns } = await db.query("SELECT * FROM entries ORDER BY id DESC");
  let error;
  try {
    await db.query("CREATE TABLE t (a)");
  } catch (e) {
    error = { name: e.name, status: e.status, code: e.code, isPerSQLError: e instanceof PerSQLError, isAuthError: e instanceof AuthError };
  }
  const connect = await PerSQL.beginConnect({
    baseURL,
    clientId: "app",
    redirectUri: "https://app.example/callback",
    scope: "openid database",
  });
  return {
    tokenPrefix: token.slice(0, 10),
    namespaceSlug,
    changes: inserted.meta.changes,
    data,
    columns,
    error,
    connect: { url: connect.url, codeVerifier: connect.codeVerifier, state: connect.state },
  };
}
