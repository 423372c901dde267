// Starts a real `persql serve` (built by cargo) on a free port with a temporary data dir
// and an operator token, and sets up a funded workspace with a template database.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";

const here = dirname(fileURLToPath(import.meta.url));
export const ADMIN = "psql_admin_" + "0123456789abcdef".repeat(3);

/** The binary: $PERSQL_BIN, else the workspace's target/debug/persql. */
function binary() {
  const bin = process.env.PERSQL_BIN ?? resolve(here, "../../../target/debug/persql");
  if (!existsSync(bin)) {
    throw new Error(`no persql binary at ${bin}: run \`cargo build -p persql-api --bin persql\` or set PERSQL_BIN`);
  }
  return bin;
}

export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** `persql serve`; resolves once /healthz answers. `stop()` kills it and removes its data. */
export async function startPersql(extraEnv = {}) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "persql-sdk-"));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PERSQL_")));
  const child = spawn(binary(), ["serve", "--listen", `127.0.0.1:${port}`, "--data-dir", dir], {
    env: { ...env, PERSQL_ADMIN_TOKEN: ADMIN, ...extraEnv },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr = (stderr + d).slice(-4000)));
  const baseURL = `http://127.0.0.1:${port}`;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`persql exited (${child.exitCode}):\n${stderr}`);
    try {
      if ((await fetch(`${baseURL}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  return {
    baseURL,
    async stop() {
      child.kill("SIGKILL");
      await new Promise((ok) => (child.exitCode !== null ? ok() : child.once("exit", ok)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function call(baseURL, method, path, token, body) {
  const res = await fetch(baseURL + path, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/**
 * Namespace `slug` (funded unless `funded: false`) with template `app-template` holding an
 * `entries` table; returns the workspace token.
 */
export async function workspace(baseURL, slug, { funded = true } = {}) {
  const { token } = await call(baseURL, "POST", "/v1/admin/namespaces", ADMIN, { slug });
  if (!funded) return token;
  await call(baseURL, "POST", `/v1/admin/namespaces/${slug}/topups`, ADMIN, { amount: "10.00", reference: `t-${slug}` });
  await call(baseURL, "POST", "/v1/databases", token, { slug: "app-template" });
  await call(baseURL, "POST", `/v1/databases/${slug}/app-template/query`, token, {
    sql: "CREATE TABLE entries (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
  });
  return token;
}
