// The built SDK in headless Chromium (Debian's, driven by playwright-core), loaded by a page
// on another origin than PerSQL: the app's page gets a token from its own /api/db-token
// bridge and queries PerSQL directly, cross-origin (CORS, Bearer token, no cookies).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

import { PerSQL } from "../dist/index.js";
import { freePort, startPersql, workspace } from "./server.mjs";

const dist = join(dirname(fileURLToPath(import.meta.url)), "../dist");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** The app: a page, the SDK under /sdk/, and the server bridge at /api/db-token. */
async function startApp(port, bridge) {
  const server = createServer(async (req, res) => {
    try {
      if (req.url === "/") {
        res.writeHead(200, { "content-type": "text/html" });
        res.end("<!doctype html><title>notes</title><p>notes app</p>");
      } else if (req.url === "/api/db-token") {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(await bridge()));
      } else if (req.url.startsWith("/sdk/")) {
        const file = normalize(join(dist, req.url.slice("/sdk/".length)));
        if (!file.startsWith(dist)) throw new Error("outside dist");
        res.writeHead(200, { "content-type": "text/javascript" });
        res.end(await readFile(file));
      } else {
        res.writeHead(404).end();
      }
    } catch (e) {
      res.writeHead(500).end(String(e));
    }
  });
  await new Promise((ok) => server.listen(port, "127.0.0.1", ok));
  return server;
}

let persql;
let app;
let other;
let browser;
let appOrigin;
let otherOrigin;

before(async () => {
  const [appPort, otherPort] = [await freePort(), await freePort()];
  // "localhost" for the pages, 127.0.0.1 for PerSQL: different hosts and ports.
  appOrigin = `http://localhost:${appPort}`;
  otherOrigin = `http://localhost:${otherPort}`;
  persql = await startPersql({ PERSQL_CORS_ORIGINS: appOrigin });
  const ws = await workspace(persql.baseURL, "acme");
  const server = new PerSQL({ token: ws, baseURL: persql.baseURL });
  const bridge = () => server.users.provision("browser-user", { template: "app-template" });
  app = await startApp(appPort, bridge);
  other = await startApp(otherPort, bridge);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  await browser?.close();
  app?.close();
  other?.close();
  await persql?.stop();
});

/** Runs the client recipe inside a page of `origin`. */
async function clientRecipe(origin) {
  const page = await browser.newPage();
  try {
    await page.goto(`${origin}/`);
    return await page.evaluate(async (baseURL) => {
      const { PerSQL, PerSQLError, pkceChallenge } = await import("/sdk/index.js");
      const bridge = async () => (await fetch("/api/db-token")).json();
      try {
        const { token, namespaceSlug, database, expiresAt } = await bridge();
        const client = new PerSQL({ token, expiresAt, baseURL, refreshToken: bridge });
        const db = client.database(`${namespaceSlug}/${database.slug}`);
        await db.query("INSERT INTO entries (body) VALUES (?)", ["from the browser"]);
        const { data } = await db.query("SELECT * FROM entries ORDER BY id DESC");
        let refused;
        try {
          await db.query("DROP TABLE entries");
        } catch (e) {
          refused = { isPerSQLError: e instanceof PerSQLError, status: e.status, code: e.code };
        }
        const schema = await db.describe();
        // Web Crypto in the page: the RFC 7636 vector, and a fresh connect request.
        const vector = await pkceChallenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        const connect = await PerSQL.beginConnect({ clientId: "psqlrp_x", redirectUri: "https://n.example/cb", baseURL });
        const pkce = new URL(connect.url).searchParams.get("code_challenge") === (await pkceChallenge(connect.codeVerifier));
        return { data, refused, tables: schema.tables.map((t) => t.name), origin: location.origin, vector, pkce };
      } catch (e) {
        return { error: { name: e.name, status: e.status, code: e.code, message: e.message } };
      }
    }, persql.baseURL);
  } finally {
    await page.close();
  }
}

test("the client recipe runs in Chromium on the app's origin, straight to PerSQL", async () => {
  const r = await clientRecipe(appOrigin);
  assert.equal(r.error, undefined, JSON.stringify(r.error));
  assert.equal(r.origin, appOrigin);
  assert.deepEqual(r.data, [{ id: 1, body: "from the browser" }]);
  assert.deepEqual(r.refused, { isPerSQLError: true, status: 403, code: "ddl_not_allowed" });
  assert.deepEqual(r.tables, ["entries"]);
  assert.equal(r.vector, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
  assert.equal(r.pkce, true);
});

test("an origin PerSQL does not allow is stopped by the browser", async () => {
  const r = await clientRecipe(otherOrigin);
  assert.equal(r.error?.code, "network_error", JSON.stringify(r));
  assert.equal(r.error?.status, 0);
});
