// A Cloudflare Worker whose fetch handler runs the server-bridge recipe with the built SDK.
import * as sdk from "./dist/index.js";
import { recipe } from "./recipe.js";

export default {
  async fetch(request, env) {
    const userId = new URL(request.url).searchParams.get("user") ?? "worker-user";
    try {
      const out = await recipe(sdk, { baseURL: env.PERSQL_BASE_URL, workspaceToken: env.PERSQL_TOKEN, userId });
      return Response.json({ runtime: navigator.userAgent, ...out });
    } catch (e) {
      return Response.json({ failed: String(e), stack: e?.stack, status: e?.status, code: e?.code }, { status: 500 });
    }
  },
};
