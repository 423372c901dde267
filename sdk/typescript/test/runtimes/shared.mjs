// What the Workers and Deno tests assert about the recipe's output.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";

export function checkRecipe(out, { baseURL, userId }) {
  assert.equal(out.failed, undefined, `recipe failed: ${out.failed}\n${out.stack ?? ""}`);
  assert.equal(out.tokenPrefix, "psql_live_");
  assert.equal(out.namespaceSlug, "acme");
  assert.equal(out.changes, 1);
  assert.deepEqual(out.columns, ["id", "body"]);
  assert.deepEqual(out.data, [{ id: 1, body: `hello from ${userId}` }]);
  // Typed errors survive the runtime: a user token may not run DDL.
  assert.deepEqual(out.error, { name: "PerSQLError", status: 403, code: "ddl_not_allowed", isPerSQLError: true, isAuthError: false });
  // PKCE S256 through the runtime's Web Crypto: the challenge is SHA-256 of the verifier.
  const url = new URL(out.connect.url);
  assert.equal(url.origin + url.pathname, `${baseURL}/oauth/authorize`);
  assert.equal(url.searchParams.get("code_challenge_method"), "S256");
  assert.equal(url.searchParams.get("state"), out.connect.state);
  assert.match(out.connect.codeVerifier, /^[A-Za-z0-9_-]{43}$/);
  const challenge = createHash("sha256").update(out.connect.codeVerifier).digest("base64url");
  assert.equal(url.searchParams.get("code_challenge"), challenge);
}
