// The built SDK in Deno (the `deno` npm package's linux binary): a script imports dist/index.js
// and runs the server-bridge recipe against the real `persql serve` (provision a user with the
// workspace token, then INSERT + SELECT as them), with network access to PerSQL only.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { startPersql, workspace } from "./server.mjs";
import { checkRecipe } from "./runtimes/shared.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const DENO = process.env.DENO_PATH ?? join(root, "node_modules/.bin/deno");
const script = join(root, "test/runtimes/deno.js");

let server;
let ws;
let denoDir;

before(async () => {
  server = await startPersql();
  ws = await workspace(server.baseURL, "acme");
  denoDir = mkdtempSync(join(tmpdir(), "persql-deno-"));
});
after(async () => {
  await server?.stop();
  if (denoDir) rmSync(denoDir, { recursive: true, force: true });
});

/** `deno run` the recipe script with only the given permissions; its JSON output. */
async function runDeno(permissions, args, env = {}) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PERSQL_")));
  const { stdout } = await promisify(execFile)(
    DENO,
    ["run", "--no-config", "--no-lock", "--no-prompt", ...permissions, script, ...args],
    { cwd: root, env: { ...clean, DENO_DIR: denoDir, NO_COLOR: "1", ...env }, timeout: 30_000 },
  );
  return JSON.parse(stdout);
}

test("Deno: a script provisions a user and queries as them with the SDK", async () => {
  const host = new URL(server.baseURL).host;
  // No --allow-env: the SDK's PERSQL_BASE_URL lookup must not throw when env access is denied.
  const out = await runDeno([`--allow-net=${host}`], [server.baseURL, ws, "deno-user"]);
  assert.match(out.runtime, /^Deno 2\./);
  checkRecipe(out, { baseURL: server.baseURL, userId: "deno-user" });
});

test("Deno: baseURL defaults to PERSQL_BASE_URL from Deno's environment", async () => {
  const host = new URL(server.baseURL).host;
  const out = await runDeno(
    [`--allow-net=${host}`, "--allow-env=PERSQL_BASE_URL"],
    ["env", ws, "deno-env-user"],
    { PERSQL_BASE_URL: server.baseURL },
  );
  checkRecipe(out, { baseURL: server.baseURL, userId: "deno-env-user" });
});
