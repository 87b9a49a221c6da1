import assert from "node:assert/strict";
import { sign } from "@octokit/webhooks-methods";
import { verifySignature } from "./signature.ts";

const hmac = async (secret: string, body: Uint8Array<ArrayBuffer>) => {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, body));
  return `sha256=${Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("")}`;
};

Deno.test("signatures are checked over the raw bytes GitHub signed", async () => {
  const enc = new TextEncoder();
  // Agrees with @octokit/webhooks-methods on ordinary text.
  const text = '{"action":"opened"}';
  assert.equal(await verifySignature("s", enc.encode(text), await sign("s", text)), true);
  // Bodies that a decode-and-re-encode would change: empty, a byte order mark, invalid UTF-8.
  for (
    const body of [new Uint8Array(), enc.encode("\ufeff{}"), new Uint8Array([0x7b, 0xff, 0x7d])]
  ) {
    assert.equal(await verifySignature("s", body, await hmac("s", body)), true);
    assert.equal(await verifySignature("other", body, await hmac("s", body)), false);
  }
  assert.equal(await verifySignature("s", enc.encode("x"), "sha256=zz"), false);
});
