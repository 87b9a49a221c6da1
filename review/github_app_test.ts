import assert from "node:assert/strict";
import { createPrivateKey, generateKeyPairSync } from "node:crypto";
import { keys } from "../kv/keys.ts";
import { ReviewError } from "./errors.ts";
import { createGitHubAppAuth, normalizePrivateKey } from "./github_app.ts";

const APP_ID = 4242;
const HOUR = 3_600_000;

function rsaPair() {
  return generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
  });
}

const right = rsaPair();
const wrong = rsaPair();
const PKCS1 = right.privateKey;
const PKCS8 = createPrivateKey(PKCS1).export({ type: "pkcs8", format: "pem" }) as string;
/** The one-line form a Deno Deploy env setting holds. */
const ONE_LINE = PKCS1.trim().replaceAll("\n", "\\n");

function b64url(text: string): Uint8Array<ArrayBuffer> {
  const b64 = text.replaceAll("-", "+").replaceAll("_", "/");
  const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

async function verifyKey(publicPem: string): Promise<CryptoKey> {
  const der = publicPem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, "").replace(/\s+/g, "");
  return await crypto.subtle.importKey(
    "spki",
    Uint8Array.from(atob(der), (c) => c.charCodeAt(0)),
    { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
    false,
    ["verify"],
  );
}

/** Whether `authorization` holds an app JWT GitHub would accept, and the JWT. */
async function checkJwt(authorization: string | null, key: CryptoKey, appId: number) {
  const jwt = /^bearer (.+)$/i.exec(authorization ?? "")?.[1];
  if (!jwt) return { ok: false };
  const [header, payload, signature] = jwt.split(".");
  if (!signature) return { ok: false, jwt };
  const signed = await crypto.subtle.verify(
    "RSASSA-PKCS1-v1_5",
    key,
    b64url(signature),
    new TextEncoder().encode(`${header}.${payload}`),
  );
  const head = JSON.parse(new TextDecoder().decode(b64url(header)));
  const claims = JSON.parse(new TextDecoder().decode(b64url(payload)));
  const now = Math.floor(Date.now() / 1000);
  const ok = signed && head.alg === "RS256" && String(claims.iss) === String(appId) &&
    typeof claims.exp === "number" && typeof claims.iat === "number" && claims.exp > now &&
    claims.iat <= now + 60 && claims.exp - claims.iat <= 600 + 30;
  return { ok, jwt };
}

interface FakeOptions {
  /** Owner login (lower-cased) → installation id; other owners get 404. */
  installations?: Record<string, number>;
  /** `expires_at` of the tokens handed out. */
  expiresAt?: () => number;
  /** Answer every request with this status instead. */
  failWith?: number;
  /** Delay before answering a token request. */
  delayMs?: number;
}

/** A tiny GitHub: the two App endpoints, each checking the app JWT against the right key. */
async function fakeGitHub(options: FakeOptions = {}) {
  const publicKey = await verifyKey(right.publicKey);
  const seen = {
    tokenRequests: 0,
    installationRequests: 0,
    tokens: [] as string[],
    jwts: [] as string[],
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    const tokenPath = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(path);
    const installationPath = /^\/repos\/([^/]+)\/([^/]+)\/installation$/.exec(path);
    if (tokenPath && req.method === "POST") seen.tokenRequests++;
    else if (installationPath && req.method === "GET") seen.installationRequests++;
    else return Response.json({ message: "Not Found" }, { status: 404 });
    await req.body?.cancel();
    const { ok, jwt } = await checkJwt(req.headers.get("authorization"), publicKey, APP_ID);
    if (jwt) seen.jwts.push(jwt);
    if (!ok) {
      return Response.json({ message: "A JSON web token could not be decoded" }, { status: 401 });
    }
    if (options.failWith) {
      return Response.json({ message: "Service Unavailable" }, { status: options.failWith });
    }
    if (tokenPath) {
      if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
      const token = `ghs_${crypto.randomUUID().replaceAll("-", "")}`;
      seen.tokens.push(token);
      const expiresAt = options.expiresAt?.() ?? Date.now() + HOUR;
      return Response.json({
        token,
        expires_at: new Date(expiresAt).toISOString().replace(/\.\d+Z$/, "Z"),
        permissions: { pull_requests: "write" },
        repository_selection: "all",
      }, { status: 201 });
    }
    const login = installationPath![1];
    const id = options.installations?.[login.toLowerCase()];
    if (id === undefined) return Response.json({ message: "Not Found" }, { status: 404 });
    return Response.json({ id, account: { login } });
  });
  return {
    baseUrl: `http://127.0.0.1:${server.addr.port}`,
    seen,
    close: () => server.shutdown(),
  };
}

type Fake = Awaited<ReturnType<typeof fakeGitHub>>;

/** Runs `body` with its own in-memory KV and fake GitHub, closing both. */
async function withSetup(
  options: FakeOptions,
  body: (kv: Deno.Kv, github: Fake) => Promise<void>,
): Promise<void> {
  const kv = await Deno.openKv(":memory:");
  const github = await fakeGitHub(options);
  try {
    await body(kv, github);
  } finally {
    await github.close();
    kv.close();
  }
}

/** Asserts a ReviewError of the given kind whose message holds no secret. */
function assertCleanError(
  error: unknown,
  retryable: boolean,
  secrets: readonly string[],
  pattern?: RegExp,
): true {
  assert.ok(error instanceof ReviewError, `not a ReviewError: ${error}`);
  assert.equal(error.retryable, retryable, error.message);
  if (pattern) assert.match(error.message, pattern);
  const text = `${error.message} ${error.stack} ${JSON.stringify(error.cause)}`;
  for (const secret of secrets) {
    assert.ok(!text.includes(secret), "an error message holds a secret");
  }
  for (const pem of [PKCS1, PKCS8, wrong.privateKey]) {
    for (const line of pem.split("\n").filter((l) => l.length > 40)) {
      assert.ok(!text.includes(line), "an error message holds key material");
    }
  }
  return true;
}

Deno.test("normalizePrivateKey accepts PKCS#1, PKCS#8 and the escaped one-line form", () => {
  const expected = normalizePrivateKey(PKCS8);
  assert.ok(expected.startsWith("-----BEGIN PRIVATE KEY-----\n"));
  assert.equal(normalizePrivateKey(PKCS1), expected);
  assert.equal(normalizePrivateKey(ONE_LINE), expected);
  assert.equal(normalizePrivateKey(`"${ONE_LINE}"`), expected);
  assert.equal(normalizePrivateKey(PKCS8.trim().replaceAll("\n", "\\n")), expected);
  assert.equal(normalizePrivateKey(PKCS1.replaceAll("\n", "\r\n")), expected);
});

Deno.test("normalizePrivateKey refuses what is not an RSA private key, without key material", () => {
  const ec = generateKeyPairSync("ec", {
    namedCurve: "P-256",
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  }).privateKey;
  const body = PKCS1.split("\n").slice(1, -2);
  const corrupted = [
    PKCS1.split("\n")[0],
    ...body.slice(0, 5),
    ...body.slice(8),
    "-----END RSA PRIVATE KEY-----",
  ]
    .join("\n");
  const cases = [
    "",
    "not a key",
    "-----BEGIN RSA PRIVATE KEY-----",
    PKCS1.replace("-----END RSA PRIVATE KEY-----", "-----END PRIVATE KEY-----"),
    PKCS1.replace(body[3], `${body[3].slice(0, 20)}!${body[3].slice(21)}`),
    corrupted,
    right.publicKey,
    ec,
  ];
  for (const raw of cases) {
    assert.throws(() => normalizePrivateKey(raw), (error: Error) => {
      assert.match(error.message, /GitHub App private key/);
      for (const line of raw.split("\n").filter((l) => l.length > 40)) {
        assert.ok(!error.message.includes(line), "the message holds key material");
      }
      assert.equal(error.cause, undefined);
      return true;
    });
  }
  assert.throws(
    () =>
      createGitHubAppAuth({
        kv: undefined as unknown as Deno.Kv,
        appId: APP_ID,
        privateKey: "-----BEGIN RSA PRIVATE KEY-----",
        baseUrl: "http://127.0.0.1:1",
      }),
    /GitHub App private key is not a PEM RSA private key/,
  );
});

for (const [name, privateKey] of [["PKCS#1", PKCS1], ["PKCS#8", PKCS8], ["one-line", ONE_LINE]]) {
  Deno.test(`installationToken signs a JWT GitHub accepts with a ${name} key`, async () => {
    await withSetup({}, async (kv, github) => {
      const auth = createGitHubAppAuth({ kv, appId: APP_ID, privateKey, baseUrl: github.baseUrl });
      const token = await auth.installationToken(7);
      assert.equal(token, github.seen.tokens[0]);
      assert.equal(github.seen.tokenRequests, 1);
    });
  });
}

Deno.test("installationToken caches the token in KV: the second call asks GitHub nothing", async () => {
  await withSetup({}, async (kv, github) => {
    const auth = createGitHubAppAuth({
      kv,
      appId: String(APP_ID),
      privateKey: PKCS1,
      baseUrl: github.baseUrl,
    });
    const first = await auth.installationToken(7);
    assert.equal(await auth.installationToken(7), first);
    assert.equal(github.seen.tokenRequests, 1);
    const stored = await kv.get<{ token: string; expiresAt: number }>(
      keys.githubInstallationToken(7),
    );
    assert.equal(stored.value?.token, first);
    assert.ok(stored.value!.expiresAt > Date.now() + HOUR - 60_000);
    // Another installation has its own token.
    assert.notEqual(await auth.installationToken(8), first);
    assert.equal(github.seen.tokenRequests, 2);
  });
});

Deno.test("installationToken renews once the clock passes expires_at minus renewBeforeMs", async () => {
  const expiresAt = Math.floor((Date.now() + HOUR) / 1000) * 1000; // GitHub gives whole seconds
  await withSetup({ expiresAt: () => expiresAt }, async (kv, github) => {
    let now = Date.now();
    const auth = createGitHubAppAuth({
      kv,
      appId: APP_ID,
      privateKey: PKCS1,
      baseUrl: github.baseUrl,
      clock: () => now,
      renewBeforeMs: 10 * 60_000,
    });
    const first = await auth.installationToken(7);
    now = expiresAt - 10 * 60_000 - 1;
    assert.equal(await auth.installationToken(7), first);
    assert.equal(github.seen.tokenRequests, 1);
    now = expiresAt - 10 * 60_000;
    const second = await auth.installationToken(7);
    assert.notEqual(second, first);
    assert.equal(github.seen.tokenRequests, 2);
  });
});

Deno.test("two GitHubAppAuth on one KV share one token", async () => {
  await withSetup({}, async (kv, github) => {
    const options = { kv, appId: APP_ID, privateKey: PKCS1, baseUrl: github.baseUrl };
    const a = createGitHubAppAuth(options);
    const b = createGitHubAppAuth({ ...options, privateKey: ONE_LINE });
    const token = await a.installationToken(7);
    assert.equal(await b.installationToken(7), token);
    assert.equal(github.seen.tokenRequests, 1);
  });
});

Deno.test("concurrent calls for one installation share one request", async () => {
  await withSetup({ delayMs: 50 }, async (kv, github) => {
    const auth = createGitHubAppAuth({
      kv,
      appId: APP_ID,
      privateKey: PKCS1,
      baseUrl: github.baseUrl,
    });
    const tokens = await Promise.all(Array.from({ length: 10 }, () => auth.installationToken(7)));
    assert.equal(new Set(tokens).size, 1);
    assert.equal(github.seen.tokenRequests, 1);
  });
});

Deno.test("forget drops the token and the owner mapping: the next calls ask again", async () => {
  await withSetup({ installations: { octo: 7 } }, async (kv, github) => {
    const auth = createGitHubAppAuth({
      kv,
      appId: APP_ID,
      privateKey: PKCS1,
      baseUrl: github.baseUrl,
    });
    const first = await auth.installationToken(7);
    assert.equal(await auth.installationFor("Octo/app"), 7);
    await auth.forget(7);
    assert.equal((await kv.get(keys.githubInstallationToken(7))).value, null);
    assert.equal((await kv.get(keys.githubInstallation("octo"))).value, null);
    assert.equal(
      (await Array.fromAsync(kv.list({ prefix: keys.githubInstallationOwnersOf(7) }))).length,
      0,
    );
    const second = await auth.installationToken(7);
    assert.notEqual(second, first);
    assert.equal(github.seen.tokenRequests, 2);
    assert.equal(await auth.installationFor("octo/app"), 7);
    assert.equal(github.seen.installationRequests, 2);
    // With an owner login, that mapping goes too; another instance then asks again as well.
    await createGitHubAppAuth({ kv, appId: APP_ID, privateKey: PKCS8, baseUrl: github.baseUrl })
      .forget(7, "OCTO");
    assert.equal((await kv.get(keys.githubInstallation("octo"))).value, null);
    assert.notEqual(await auth.installationToken(7), second);
    assert.equal(github.seen.tokenRequests, 3);
  });
});

Deno.test("forget during a token request keeps that token out of KV", async () => {
  await withSetup({ delayMs: 50 }, async (kv, github) => {
    const auth = createGitHubAppAuth({
      kv,
      appId: APP_ID,
      privateKey: PKCS1,
      baseUrl: github.baseUrl,
    });
    const pending = auth.installationToken(7);
    await new Promise((r) => setTimeout(r, 10));
    await auth.forget(7);
    const old = await pending;
    assert.equal((await kv.get(keys.githubInstallationToken(7))).value, null);
    assert.notEqual(await auth.installationToken(7), old);
    assert.equal(github.seen.tokenRequests, 2);
  });
});

Deno.test("installationFor caches per owner login and says when the app is not installed", async () => {
  await withSetup({ installations: { octo: 7, other: 9 } }, async (kv, github) => {
    let now = Date.now();
    const auth = createGitHubAppAuth({
      kv,
      appId: APP_ID,
      privateKey: PKCS1,
      baseUrl: github.baseUrl,
      clock: () => now,
    });
    const [a, b] = await Promise.all([
      auth.installationFor("Octo/app"),
      auth.installationFor("octo/app"),
    ]);
    assert.deepEqual([a, b], [7, 7]);
    assert.equal(await auth.installationFor("OCTO/another"), 7);
    assert.equal(github.seen.installationRequests, 1);
    const mapping = await kv.get<{ installationId: number }>(keys.githubInstallation("octo"));
    assert.equal(mapping.value?.installationId, 7);
    // A second instance reads the same mapping.
    const b2 = createGitHubAppAuth({
      kv,
      appId: APP_ID,
      privateKey: PKCS8,
      baseUrl: github.baseUrl,
    });
    assert.equal(await b2.installationFor("octo/app"), 7);
    assert.equal(await auth.installationFor("other/app"), 9);
    assert.equal(github.seen.installationRequests, 2);
    // After an hour the mapping is asked for again.
    now += HOUR + 1;
    assert.equal(await auth.installationFor("octo/app"), 7);
    assert.equal(github.seen.installationRequests, 3);

    await assert.rejects(
      auth.installationFor("nobody/app"),
      (error) =>
        assertCleanError(
          error,
          false,
          [...github.seen.jwts, ...github.seen.tokens],
          /not installed on nobody\/app/,
        ),
    );
    await assert.rejects(
      auth.installationFor("not-a-repo"),
      (error) => assertCleanError(error, false, []),
    );
  });
});

Deno.test("a key GitHub does not know is refused (401) as a final error", async () => {
  await withSetup({ installations: { octo: 7 } }, async (kv, github) => {
    const auth = createGitHubAppAuth({
      kv,
      appId: APP_ID,
      privateKey: wrong.privateKey,
      baseUrl: github.baseUrl,
    });
    await assert.rejects(
      auth.installationToken(7),
      (error) => assertCleanError(error, false, github.seen.jwts, /answered 401/),
    );
    await assert.rejects(
      auth.installationFor("octo/app"),
      (error) => assertCleanError(error, false, github.seen.jwts, /answered 401/),
    );
    assert.equal(github.seen.jwts.length, 2);
    assert.equal((await kv.get(keys.githubInstallationToken(7))).value, null);
    // A wrong app id is refused the same way.
    const other = createGitHubAppAuth({
      kv,
      appId: APP_ID + 1,
      privateKey: PKCS1,
      baseUrl: github.baseUrl,
    });
    await assert.rejects(
      other.installationToken(7),
      (error) => assertCleanError(error, false, github.seen.jwts),
    );
  });
});

Deno.test("5xx and 429 answers are retryable errors and nothing is cached", async () => {
  for (const status of [502, 429]) {
    await withSetup({ failWith: status, installations: { octo: 7 } }, async (kv, github) => {
      const auth = createGitHubAppAuth({
        kv,
        appId: APP_ID,
        privateKey: PKCS1,
        baseUrl: github.baseUrl,
      });
      await assert.rejects(
        auth.installationToken(7),
        (error) =>
          assertCleanError(error, true, github.seen.jwts, new RegExp(`answered ${status}`)),
      );
      await assert.rejects(
        auth.installationFor("octo/app"),
        (error) => assertCleanError(error, true, github.seen.jwts),
      );
      // The failure is not coalesced into later calls.
      await assert.rejects(auth.installationToken(7));
      assert.equal(github.seen.tokenRequests, 2);
      assert.equal((await kv.get(keys.githubInstallationToken(7))).value, null);
    });
  }
});

Deno.test("an unexpected answer and no answer are retryable errors without secrets", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const garbage: typeof fetch = () =>
      Promise.resolve(Response.json({ token: "ghs_secretish", expires_at: "soon" }));
    const auth = createGitHubAppAuth({
      kv,
      appId: APP_ID,
      privateKey: PKCS1,
      baseUrl: "http://github.invalid",
      fetch: garbage,
    });
    await assert.rejects(
      auth.installationToken(7),
      (error) => assertCleanError(error, true, ["ghs_secretish"], /unexpected body/),
    );
    const jwts: string[] = [];
    const down: typeof fetch = (_input, init) => {
      jwts.push(new Headers(init?.headers).get("authorization") ?? "");
      return Promise.reject(new TypeError("connection refused"));
    };
    const auth2 = createGitHubAppAuth({
      kv,
      appId: APP_ID,
      privateKey: PKCS1,
      baseUrl: "http://github.invalid",
      fetch: down,
    });
    await assert.rejects(
      auth2.installationToken(7),
      (error) => assertCleanError(error, true, jwts.map((j) => j.slice(7)), /without an answer/),
    );
    assert.equal(jwts.length, 1);
  } finally {
    kv.close();
  }
});
