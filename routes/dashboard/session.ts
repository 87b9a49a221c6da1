/**
 * Dashboard sign-in: `BACKEND_AUTH_TOKEN` is exchanged for a session whose random id lives in an
 * `HttpOnly`, `SameSite=Strict` cookie (`Secure` over https); the token itself is never stored
 * in the browser or rendered into a page. Forms carry the session's CSRF token as well.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { type DashboardSession, deleteSession, getSession, putSession } from "../../kv/sessions.ts";
import type { ReviewDeps } from "../../review/deps.ts";
import { secretsEqual, sha256 } from "../auth.ts";

/** The session cookie's name. */
export const SESSION_COOKIE = "ai_review_session";
/** How long a sign-in lasts. */
export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;

/** What the session middleware puts on the context. */
export type SessionEnv = { Variables: { session: DashboardSession; sessionId: string } };

function randomId(bytes: number): string {
  const raw = crypto.getRandomValues(new Uint8Array(bytes));
  return btoa(String.fromCharCode(...raw)).replace(/\+/g, "-").replace(/\//g, "_").replace(
    /=+$/,
    "",
  );
}

async function tokenHash(token: string): Promise<string> {
  return btoa(String.fromCharCode(...await sha256(token)));
}

function isHttps(c: Context): boolean {
  return new URL(c.req.url).protocol === "https:" ||
    c.req.header("x-forwarded-proto")?.split(",")[0].trim() === "https";
}

/**
 * Checks a token typed on the sign-in page and, when it is right, starts a session and sets its
 * cookie. `false` when the token is wrong.
 *
 * @example
 * ```ts
 * if (await signIn(c, deps, token)) return c.redirect("/", 303);
 * ```
 */
export async function signIn(c: Context, deps: ReviewDeps, token: string): Promise<boolean> {
  const expected = deps.config.BACKEND_AUTH_TOKEN;
  if (!expected || !(await secretsEqual(token, expected))) return false;
  const id = randomId(32);
  const now = deps.clock();
  await putSession(deps.kv, id, {
    createdAt: now,
    expiresAt: now + SESSION_TTL_MS,
    csrf: randomId(24),
    tokenHash: await tokenHash(expected),
  });
  setCookie(c, SESSION_COOKIE, id, {
    httpOnly: true,
    sameSite: "Strict",
    secure: isHttps(c),
    path: "/",
    maxAge: Math.floor(SESSION_TTL_MS / 1000),
  });
  return true;
}

/**
 * Ends the session of the request and clears its cookie.
 *
 * @example
 * ```ts
 * await signOut(c, deps);
 * ```
 */
export async function signOut(c: Context, deps: ReviewDeps): Promise<void> {
  const id = getCookie(c, SESSION_COOKIE);
  if (id) await deleteSession(deps.kv, id);
  deleteCookie(c, SESSION_COOKIE, { path: "/", secure: isHttps(c) });
}

/**
 * Requires a signed-in session: pages without one go to `/login`, anything else gets a 401.
 *
 * @example
 * ```ts
 * app.get("/", requireSession(deps, "page"), (c) => c.text(c.get("session").csrf));
 * ```
 */
export function requireSession(
  deps: ReviewDeps,
  kind: "page" | "data",
): MiddlewareHandler<SessionEnv> {
  return async (c, next) => {
    const id = getCookie(c, SESSION_COOKIE);
    const session = id && id.length <= 100 ? await getSession(deps.kv, id, deps.clock()) : null;
    // A session lives only as long as the token it was signed in with.
    const token = deps.config.BACKEND_AUTH_TOKEN;
    const valid = session && token &&
      await secretsEqual(session.tokenHash, await tokenHash(token));
    if (!session || !id || !valid) {
      // Pages go to the sign-in; the page script's own reads (`?fragment=1`) get a 401 to act on.
      const navigation = kind === "page" && c.req.method === "GET" &&
        c.req.query("fragment") !== "1";
      if (navigation) return c.redirect("/login", 303);
      return c.json({ error: "sign in first" }, 401);
    }
    c.set("session", session);
    c.set("sessionId", id);
    await next();
  };
}

/**
 * Requires a posted form to carry the session's CSRF token (`_csrf`, compared in constant time);
 * runs after {@link requireSession}. The handler reads the same form (`c.req.parseBody()` is
 * cached).
 *
 * @example
 * ```ts
 * app.post("/ui/x", requireSession(deps, "data"), requireCsrfToken(), (c) => c.text("ok"));
 * ```
 */
export function requireCsrfToken(): MiddlewareHandler<SessionEnv> {
  return async (c, next) => {
    const form = await c.req.parseBody();
    const given = form._csrf;
    const matches = typeof given === "string" && given.length > 0 &&
      await secretsEqual(given, c.get("session").csrf);
    if (!matches) return c.text("stale form: reload the page", 403);
    await next();
  };
}
