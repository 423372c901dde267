// A Deno script running the server-bridge recipe with the built SDK; prints the outcome as JSON.
// Usage: deno run --allow-net=HOST:PORT deno.js <baseURL|"env"> <workspaceToken> <userId>
// With "env" the SDK must find PerSQL's URL itself, in PERSQL_BASE_URL (needs --allow-env).
import * as sdk from "../../dist/index.js";
import { recipe } from "./recipe.js";

const [base, workspaceToken, userId] = Deno.args;
const baseURL = base === "env" ? undefined : base;
try {
  const out = await recipe(sdk, { baseURL, workspaceToken, userId });
  console.log(JSON.stringify({ runtime: `Deno ${Deno.version.deno}`, ...out }));
} catch (e) {
  console.log(JSON.stringify({ failed: String(e), stack: e?.stack, status: e?.status, code: e?.code }));
}
