/**
 * Bearer authentication for the internal API, compared in constant time.
 *
 * @module
 */
import { timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";

/**
 * SHA-256 of a text's UTF-8 bytes.
 *
 * @example
 * ```ts
 * (await sha256("a")).length; // 32
 * ```
 */
export async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

/**
 * Compares two secrets in constant time (hashing first, so lengths leak nothing either).
 *
 * @example
 * ```ts
 * await secretsEqual("a", "a"); // true
 * ```
 */
export async function secretsEqual(given: string, expected: string): Promise<boolean> {
  return timingSafeEqual(await sha256(given), await sha256(expected));
}

/**
 * Requires `Authorization: Bearer <token>`; answers 503 when no token is configured.
 *
 * @example
 * ```ts
 * app.use("/review", requireBearer(() => config.BACKEND_AUTH_TOKEN));
 * ```
 */
export function requireBearer(expected: () => string | undefined): MiddlewareHandler {
  return async (c, next) => {
    const token = expected();
    if (!token) {
      return c.json({ error: "internal API is disabled: BACKEND_AUTH_TOKEN is not set" }, 503);
    }
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match || !(await secretsEqual(match[1].trim(), token))) {
      return c.json({ error: "missing or wrong bearer token" }, 401, {
        "WWW-Authenticate": 'Bearer realm="internal"',
      });
    }
    await next();
  };
}
