// A person's browser, played with fetch: a cookie jar kept by hand, no automatic redirects
// (tests read `Location`), and helpers for PerSQL's HTML forms (sign-up, consent, account).

import assert from "node:assert/strict";

export const PASSWORD = "correct horse battery";

function unescape(s) {
  return s
    .replaceAll("&quot;", '"')
    .replaceAll("&#x27;", "'")
    .replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">")
    .replaceAll("&amp;", "&");
}

/** Every `<input type="hidden">` of an HTML page, in order, as [name, value] pairs. */
export function hiddenFields(html) {
  return [...html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)].map((m) => [
    unescape(m[1]),
    unescape(m[2]),
  ]);
}

export class Person {
  /** @param {string} baseURL PerSQL's URL: cookies are only sent there. */
  constructor(baseURL) {
    this.baseURL = baseURL;
    this.origin = new URL(baseURL).origin;
    /** @type {Map<string, string>} */
    this.cookies = new Map();
  }

  /**
   * One request as a browser sends it (cookies for PerSQL's origin), without following
   * redirects. Answers `{status, location, type, text, bytes}`.
   */
  async request(path, { method = "GET", form, bearer } = {}) {
    const url = new URL(path, this.baseURL);
    const headers = {};
    if (url.origin === this.origin && this.cookies.size > 0) {
      headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    }
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    let body;
    if (form) {
      headers["content-type"] = "application/x-www-form-urlencoded";
      body = new URLSearchParams(form).toString();
    }
    const res = await fetch(url, { method, headers, body, redirect: "manual" });
    if (url.origin === this.origin) {
      for (const c of res.headers.getSetCookie()) {
        const [pair, ...attrs] = c.split(";");
        const eq = pair.indexOf("=");
        const name = pair.slice(0, eq).trim();
        const value = pair.slice(eq + 1).trim();
        const gone = attrs.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a));
        if (gone || value === "") this.cookies.delete(name);
        else this.cookies.set(name, value);
      }
    }
    const bytes = new Uint8Array(await res.arrayBuffer());
    return {
      status: res.status,
      location: res.headers.get("location"),
      type: res.headers.get("content-type") ?? "",
      bytes,
      text: new TextDecoder().decode(bytes),
    };
  }

  get(path) {
    return this.request(path);
  }

  /** Submits the form of `page` (its hidden fields, e.g. `csrf`) to `action` with `extra`. */
  submit(page, action, extra = {}) {
    const form = new URLSearchParams(hiddenFields(page.text));
    for (const [k, v] of Object.entries(extra)) form.append(k, v);
    return this.request(action, { method: "POST", form });
  }

  /** A JSON call with the session cookie (or `bearer`): `{status, body}`. */
  async json(method, path, bearer) {
    const res = await this.request(path, { method, bearer });
    return { status: res.status, body: res.text ? JSON.parse(res.text) : null };
  }

  /**
   * Follows an authorize URL while signed out: the sign-in page, its "Create an account"
   * link, the sign-up form, then signing in; answers the page sign-in returned to (the
   * consent page).
   */
  async signUpThrough(authorizeURL, email) {
    const signin = await this.get(authorizeURL);
    assert.equal(signin.status, 200, signin.text);
    assert.match(signin.text, /Sign in to PerSQL/);
    const link = signin.text.match(/href="(\/account\/signup\?return_to=[^"]*)"/);
    assert.ok(link, "the sign-in page links to sign-up");
    const form = await this.get(unescape(link[1]));
    assert.equal(form.status, 200, form.text);
    assert.match(form.text, /Create your PerSQL account/);
    const created = await this.submit(form, "/account/signup", { email, password: PASSWORD });
    assert.equal(created.status, 303, created.text);
    // Sign-up signs nobody in (it answers a registered email the same way): sign in next.
    assert.match(created.location ?? "", /^\/account\/signin\?/);
    const signinForm = await this.get(created.location);
    assert.equal(signinForm.status, 200, signinForm.text);
    const done = await this.submit(signinForm, "/account/signin", { email, password: PASSWORD });
    assert.equal(done.status, 303, done.text);
    assert.ok(this.cookies.has("persql_session"), "signed in: a session cookie");
    // Back where the sign-in page came from.
    const back = new URL(done.location, this.baseURL);
    assert.equal(back.pathname, "/oauth/authorize");
    return this.get(back.toString());
  }

  /** Approves (or denies) on the consent page; answers the redirect to the app. */
  async decide(consent, decision) {
    assert.equal(consent.status, 200, consent.text);
    assert.match(consent.text, /a private database in your account and nothing else/);
    const names = hiddenFields(consent.text).map(([k]) => k);
    assert.ok(names.includes("csrf"), `the consent form carries a CSRF token: ${names}`);
    const res = await this.submit(consent, "/oauth/authorize", { decision });
    assert.equal(res.status, 303, res.text);
    return res;
  }

  /** The account's namespace slug, from the account page. */
  async namespace() {
    const home = await this.get("/account");
    assert.equal(home.status, 200, home.text);
    const m = home.text.match(/namespace <code>([^<]+)<\/code>/);
    assert.ok(m, "the account page names the namespace");
    return m[1];
  }

  /** Mints a personal workspace token (`psql_ws_…`) on the account page. */
  async personalToken() {
    const home = await this.get("/account");
    const csrf = new Map(hiddenFields(home.text)).get("csrf");
    assert.ok(csrf, "the account page carries a CSRF token");
    const res = await this.request("/account/tokens", { method: "POST", form: { csrf } });
    assert.equal(res.status, 201, res.text);
    const m = res.text.match(/psql_ws_[A-Za-z0-9_-]+/);
    assert.ok(m, "the new token is shown");
    return m[0];
  }
}
