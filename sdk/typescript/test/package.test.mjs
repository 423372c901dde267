// `npm pack` produces the package: ESM, type declarations, the README, no tests or sources.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

test("npm pack holds the built ESM, its declarations and the README", () => {
  const out = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: root, encoding: "utf8" });
  const [pack] = JSON.parse(out);
  assert.equal(pack.name, "@persql/sdk");
  const files = pack.files.map((f) => f.path).sort();
  for (const f of ["README.md", "package.json", "dist/index.js", "dist/index.d.ts", "dist/client.d.ts"]) {
    assert.ok(files.includes(f), `${f} missing from ${files}`);
  }
  assert.ok(!files.some((f) => f.startsWith("test/") || f.startsWith("src/") || f.startsWith("node_modules/")), files.join(" "));
});

test("the package has no runtime dependencies", async () => {
  const { default: pkg } = await import("../package.json", { with: { type: "json" } });
  assert.equal(pkg.dependencies, undefined);
  assert.equal(pkg.type, "module");
  assert.equal(pkg.exports["."].types, "./dist/index.d.ts");
});
