/**
 * GitHub's `X-Hub-Signature-256`: HMAC-SHA256 of the raw body bytes with the webhook secret.
 * Verified over the bytes as received: `@octokit/webhooks-methods` takes the body as a string and
 * re-encodes it, which differs from what GitHub signed when the body is empty, starts with a byte
 * order mark, or is not valid UTF-8. WebCrypto's `verify` compares in constant time.
 *
 * @module
 */

const encoder = new TextEncoder();

/** The header's form: `sha256=` and 64 hex digits. */
export const SIGNATURE_PATTERN = /^sha256=[0-9a-f]{64}$/i;

function hexBytes(hex: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/**
 * Whether `signature` (`sha256=<hex>`) is the HMAC-SHA256 of `body` under `secret`.
 *
 * @example
 * ```ts
 * await verifySignature("secret", new Uint8Array(await req.arrayBuffer()), header); // true|false
 * ```
 */
export async function verifySignature(
  secret: string,
  body: Uint8Array<ArrayBuffer>,
  signature: string,
): Promise<boolean> {
  if (!SIGNATURE_PATTERN.test(signature)) return false;
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["verify"],
  );
  return await crypto.subtle.verify("HMAC", key, hexBytes(signature.slice(7)), body);
}
