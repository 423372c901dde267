// The built SDK inside Cloudflare's Workers runtime: workerd (the npm package's linux binary,
// driven by Miniflare). The Worker's fetch handler runs the server-bridge recipe against the
// real `persql serve`: provision a user with the workspace token, then INSERT + SELECT as them.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";

import { startPersql, workspace } from "./server.mjs";
import { checkRecipe } from "./runtimes/shared.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
const runtimes = join(root, "test/runtimes");

let server;
let mf;

before(async () => {
  server = await startPersql();
  const ws = await workspace(server.baseURL, "acme");
  // Modules as workerd gets them: the Worker, the recipe, and every file of dist/ (unbundled,
  // so the test loads exactly what the package publishes).
  const modules = [
    { type: "ESModule", path: join(root, "worker.js"), contents: readFileSync(join(runtimes, "worker.js"), "utf8") },
    { type: "ESModule", path: join(root, "recipe.js"), contents: readFileSync(join(runtimes, "recipe.js"), "utf8") },
    ...readdirSync(dist)
      .filter((f) => f.endsWith(".js"))
      .map((f) => ({ type: "ESModule", path: join(dist, f), contents: readFileSync(join(dist, f), "utf8") })),
  ];
  mf = new Miniflare({
    modules,
    modulesRoot: root,
    compatibilityDate: "2025-07-01",
    bindings: { PERSQL_BASE_URL: server.baseURL, PERSQL_TOKEN: ws },
  });
  await mf.ready;
});

after(async () => {
  await mf?.dispose();
  await server?.stop();
});

test("Workers (workerd): the fetch handler provisions a user and queries as them with the SDK", async () => {
  const res = await mf.dispatchFetch("http://worker.example/?user=worker-user");
  const out = await res.json();
  assert.equal(res.status, 200, JSON.stringify(out));
  assert.equal(out.runtime, "Cloudflare-Workers");
  checkRecipe(out, { baseURL: server.baseURL, userId: "worker-user" });

  // A second user gets their own database: one row, their own.
  const second = await (await mf.dispatchFetch("http://worker.example/?user=worker-user-2")).json();
  checkRecipe(second, { baseURL: server.baseURL, userId: "worker-user-2" });
});
