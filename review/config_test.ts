import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { ConfigError, missingSettings, parseConfig } from "./config.ts";

Deno.test("parseConfig applies the documented defaults", () => {
  const c = parseConfig({});
  assert.equal(c.PORT, 8000);
  assert.equal(c.MAX_CONCURRENT_PER_OWNER, 4);
  assert.equal(c.REVIEW_TIMEOUT_MS, 1_200_000);
  assert.equal(c.AGENT_IDLE_TIMEOUT_MS, 60_000);
  assert.equal(c.MAX_ATTEMPTS, 3);
  assert.equal(c.GITHUB_API_URL, "https://api.github.com");
  assert.equal(c.QUEUE_TRANSPORT, "auto");
  assert.equal(c.AGENT_KIND, "local");
  assert.deepEqual(missingSettings(c), [
    "GITHUB_WEBHOOK_SECRET",
    "GITHUB_TOKEN (or GITHUB_APP_ID + GITHUB_APP_PRIVATE_KEY)",
    "BACKEND_AUTH_TOKEN",
  ]);
});

Deno.test("GitHub App settings come in pairs and a bad key stops start-up without showing it", () => {
  assert.throws(
    () => parseConfig({ GITHUB_APP_ID: "12" }),
    /GITHUB_APP_PRIVATE_KEY: GITHUB_APP_ID/,
  );
  assert.throws(
    () => parseConfig({ GITHUB_APP_PRIVATE_KEY: "not-a-key-secret-text" }),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /GITHUB_APP_ID: /);
      assert.match(e.message, /GITHUB_APP_PRIVATE_KEY: /);
      assert.doesNotMatch(e.message, /not-a-key-secret-text/);
      return true;
    },
  );
  const { privateKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  // The one-line form Deno Deploy's settings need.
  const oneLine = privateKey.replaceAll("\n", "\\n");
  const app = parseConfig({ GITHUB_APP_ID: "12", GITHUB_APP_PRIVATE_KEY: oneLine });
  assert.equal(app.GITHUB_APP_ID, 12);
  assert.ok(!missingSettings(app).some((m) => m.startsWith("GITHUB_TOKEN")));
});

Deno.test("AGENT_KIND defaults to sse with AGENT_URL and names what a kind needs", () => {
  assert.equal(parseConfig({ AGENT_URL: "http://a" }).AGENT_KIND, "sse");
  assert.equal(parseConfig({ AGENT_URL: "http://a", AGENT_KIND: "openai" }).AGENT_KIND, "openai");
  assert.throws(() => parseConfig({ AGENT_KIND: "openai" }), /AGENT_URL: AGENT_KIND=openai/);
  assert.throws(
    () => parseConfig({ AGENT_KIND: "kilo", AGENT_URL: "http://a" }),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /PUBLIC_URL/);
      assert.match(e.message, /CALLBACK_SECRET/);
      return true;
    },
  );
  assert.throws(() => parseConfig({ AGENT_KIND: "magic" }), /AGENT_KIND/);
  assert.deepEqual(
    missingSettings(parseConfig({ AGENT_URL: "http://a", AGENT_KIND: "openai" })).at(-1),
    "AGENT_MODEL",
  );
});

Deno.test("parseConfig names the bad variable", () => {
  assert.throws(() => parseConfig({ MAX_CONCURRENT_PER_OWNER: "many" }), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /MAX_CONCURRENT_PER_OWNER/);
    return true;
  });
  assert.throws(() => parseConfig({ AGENT_URL: "not a url" }), /AGENT_URL/);
  assert.throws(() => parseConfig({ QUEUE_TRANSPORT: "redis" }), /QUEUE_TRANSPORT/);
});

Deno.test("parseConfig treats empty strings as unset", () => {
  const c = parseConfig({ GITHUB_TOKEN: "", PORT: "" });
  assert.equal(c.GITHUB_TOKEN, undefined);
  assert.equal(c.PORT, 8000);
});
