/**
 * Per-attempt tokens for agent callbacks (`POST /callbacks/reviews/:id`). A token names the
 * attempt (its lease token) and carries an HMAC-SHA256 of the review id and that lease token
 * under the callback key, so an agent can report on exactly the attempt that started it and a
 * token for one review or attempt is worth nothing for another.
 *
 * @module
 */

import type { Config } from "./config.ts";

/**
 * The key of callback tokens: `CALLBACK_SECRET`, else `BACKEND_AUTH_TOKEN`; none means agent
 * callbacks are off.
 *
 * @example
 * ```ts
 * const secret = callbackSecret(config);
 * ```
 */
export function callbackSecret(config: Config): string | undefined {
  return config.CALLBACK_SECRET ?? config.BACKEND_AUTH_TOKEN;
}

/** The header the agent sends the token back in (through the `kilo` wire's `callbackHeaders`). */
export const CALLBACK_TOKEN_HEADER = "x-callback-token";

const encoder = new TextEncoder();

function base64url(bytes: ArrayBuffer): string {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function fromBase64url(text: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[A-Za-z0-9_-]{43}$/.test(text)) return null;
  const raw = atob(text.replaceAll("-", "+").replaceAll("_", "/") + "=");
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

function hmacKey(secret: string, usage: "sign" | "verify") {
  return crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    [usage],
  );
}

const message = (reviewId: string, leaseToken: string) =>
  encoder.encode(`review-callback\n${reviewId}\n${leaseToken}`);

/**
 * The callback token of one attempt: `<leaseToken>.<base64url HMAC>`.
 *
 * @example
 * ```ts
 * const token = await callbackToken("key", "r1", started.lease!.token);
 * ```
 */
export async function callbackToken(
  secret: string,
  reviewId: string,
  leaseToken: string,
): Promise<string> {
  const mac = await crypto.subtle.sign(
    "HMAC",
    await hmacKey(secret, "sign"),
    message(reviewId, leaseToken),
  );
  return `${leaseToken}.${base64url(mac)}`;
}

/**
 * The lease token a callback token names, if its HMAC is right for this review (compared in
 * constant time by WebCrypto); `null` otherwise.
 *
 * @example
 * ```ts
 * const leaseToken = await verifyCallbackToken("key", "r1", header);
 * if (!leaseToken) return c.json({ error: "bad callback token" }, 401);
 * ```
 */
export async function verifyCallbackToken(
  secret: string,
  reviewId: string,
  token: string,
): Promise<string | null> {
  const dot = token.lastIndexOf(".");
  if (dot <= 0 || dot > 200) return null;
  const leaseToken = token.slice(0, dot);
  const mac = fromBase64url(token.slice(dot + 1));
  if (!mac) return null;
  const ok = await crypto.subtle.verify(
    "HMAC",
    await hmacKey(secret, "verify"),
    mac,
    message(reviewId, leaseToken),
  );
  return ok ? leaseToken : null;
}
