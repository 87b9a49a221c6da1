import assert from "node:assert/strict";
import { Hono } from "hono";
import { requireBearer, secretsEqual } from "./auth.ts";

Deno.test("secretsEqual compares whole secrets", async () => {
  assert.equal(await secretsEqual("token", "token"), true);
  assert.equal(await secretsEqual("token", "token2"), false);
  assert.equal(await secretsEqual("", "token"), false);
});

Deno.test("requireBearer: 503 unset, 401 missing or wrong, next on match", async () => {
  const config: { token?: string } = {};
  const app = new Hono();
  app.use("*", requireBearer(() => config.token));
  app.get("/", (c) => c.json({ ok: true }));
  assert.equal((await app.request("/")).status, 503);
  config.token = "s3cret";
  const missing = await app.request("/");
  assert.equal(missing.status, 401);
  assert.equal(JSON.stringify(await missing.json()).includes("s3cret"), false);
  assert.equal((await app.request("/", { headers: { authorization: "Bearer nope" } })).status, 401);
  const ok = await app.request("/", { headers: { authorization: "Bearer s3cret" } });
  assert.deepEqual([ok.status, await ok.json()], [200, { ok: true }]);
});
