/**
 * GitHub App authentication: installation access tokens and the installation covering a
 * repository, cached in Deno KV so every instance shares them (`kv/installations.ts`).
 *
 * `@octokit/auth-app` signs the app JWT (RS256, through WebCrypto). The two App endpoints are then
 * asked with `@octokit/rest`'s `request`, one HTTP request per call bounded by `timeoutMs`, so the
 * raw answers can be checked and the KV cache alone decides what is reused: auth-app's in-memory
 * token cache and its process-wide coalescing of token requests are never involved. Concurrent
 * calls for one installation (or owner) within one `GitHubAppAuth` share one request. Errors are
 * {@link ReviewError}s mapped by {@link githubError}; no message holds the key, a JWT or a token.
 *
 * @module
 */
import { createAppAuth } from "@octokit/auth-app";
import { Octokit } from "@octokit/rest";
import { createPrivateKey } from "node:crypto";
import { z } from "zod";
import {
  forgetInstallation,
  readInstallationToken,
  readOwnerInstallation,
  storeInstallationToken,
  storeOwnerInstallation,
} from "../kv/installations.ts";
import { ReviewError } from "./errors.ts";
import { DEFAULT_GITHUB_TIMEOUT_MS, githubError } from "./github.ts";

/**
 * GitHub App credentials turned into what GitHub calls need.
 *
 * @example
 * ```ts
 * const auth: GitHubAppAuth = createGitHubAppAuth({ kv, appId, privateKey, baseUrl });
 * const token = await auth.installationToken(await auth.installationFor("octo/app"));
 * ```
 */
export interface GitHubAppAuth {
  /**
   * Installation token: the KV-cached one while it has more than `renewBeforeMs` left by
   * `clock()`, else a fresh one from `POST {baseUrl}/app/installations/{id}/access_tokens` (signed
   * app JWT), stored in KV for every instance (with `expireIn` so KV drops it).
   */
  installationToken(installationId: number): Promise<string>;
  /**
   * The installation covering "owner/repo": `GET {baseUrl}/repos/{owner}/{repo}/installation` with
   * the app JWT, cached in KV per owner login (lower-cased) for an hour. 404 → final ReviewError
   * saying the app is not installed on that repository.
   */
  installationFor(repo: string): Promise<number>;
  /**
   * Drops the cached token of an installation and any owner→installation mapping pointing at it
   * (uninstall, suspend, repositories removed).
   */
  forget(installationId: number, ownerLogin?: string): Promise<void>;
  /**
   * The login the App's writes are authored by, `<slug>[bot]` (`GET /app` with the app JWT,
   * asked once per process): how our own comments and reviews are told from other bots'.
   */
  botLogin(): Promise<string>;
}

/**
 * Default margin before a token's `expires_at` from which it is renewed.
 *
 * @example
 * ```ts
 * createGitHubAppAuth({ kv, appId, privateKey, baseUrl, renewBeforeMs: DEFAULT_RENEW_BEFORE_MS });
 * ```
 */
export const DEFAULT_RENEW_BEFORE_MS = 5 * 60_000;

/**
 * How long the owner → installation mapping is trusted.
 *
 * @example
 * ```ts
 * await storeOwnerInstallation(kv, "octo", 42, { now, ttlMs: INSTALLATION_CACHE_MS });
 * ```
 */
export const INSTALLATION_CACHE_MS = 60 * 60_000;

/** What `GET /app` must answer. */
const AppAnswer = z.object({ slug: z.string().min(1).max(100) });

const TokenAnswer = z.object({
  token: z.string().min(1),
  expires_at: z.iso.datetime({ offset: true }),
});

const InstallationAnswer = z.object({ id: z.number().int().positive() });

const silent = { debug() {}, info() {}, warn() {}, error() {} };

/** auth-app's token cache, kept empty: the KV cache decides. */
const noCache = { get: () => "", set: () => {} };

const BAD_KEY = "GitHub App private key is not a PEM RSA private key: expected " +
  '"-----BEGIN RSA PRIVATE KEY-----" (PKCS#1) or "-----BEGIN PRIVATE KEY-----" (PKCS#8), with ' +
  'real line breaks or written as "\\n" on one line';

const PEM =
  /^-----BEGIN (RSA PRIVATE KEY|PRIVATE KEY)-----([A-Za-z0-9+/=\s]+)-----END (RSA PRIVATE KEY|PRIVATE KEY)-----$/;

/**
 * Accepts a PEM private key with real newlines or the one-line "\n"-escaped form (Deno Deploy env
 * settings), PKCS#1 ("BEGIN RSA PRIVATE KEY") or PKCS#8 ("BEGIN PRIVATE KEY"), and returns it as
 * a PKCS#8 PEM (what WebCrypto signs with). Throws an Error with a clear message (never containing
 * the key) when it is not an unencrypted RSA private key.
 *
 * @example
 * ```ts
 * const pem = normalizePrivateKey(Deno.env.get("GITHUB_APP_PRIVATE_KEY") ?? "");
 * pem.startsWith("-----BEGIN PRIVATE KEY-----\n"); // true
 * ```
 */
export function normalizePrivateKey(raw: string): string {
  if (typeof raw !== "string" || raw.trim() === "") {
    throw new Error("GitHub App private key is empty");
  }
  let text = raw.trim();
  if (text.length > 1 && (text[0] === '"' || text[0] === "'") && text.at(-1) === text[0]) {
    text = text.slice(1, -1);
  }
  text = text.replace(/\\r\\n|\\n|\\r/g, "\n").trim();
  const match = PEM.exec(text);
  if (!match || match[1] !== match[3]) throw new Error(BAD_KEY);
  const body = match[2].replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) throw new Error(BAD_KEY);
  const lines = body.match(/.{1,64}/g)!.join("\n");
  let key;
  try {
    key = createPrivateKey(`-----BEGIN ${match[1]}-----\n${lines}\n-----END ${match[1]}-----\n`);
  } catch {
    // The decoder's error says nothing useful and is not passed on.
    throw new Error(`${BAD_KEY} (the key text does not decode)`);
  }
  if (key.asymmetricKeyType !== "rsa") {
    throw new Error(`GitHub App private key is not an RSA key (${key.asymmetricKeyType})`);
  }
  return key.export({ type: "pkcs8", format: "pem" }) as string;
}

function splitRepo(repo: string): { owner: string; repo: string } {
  const i = repo.indexOf("/");
  if (i <= 0 || i === repo.length - 1 || repo.indexOf("/", i + 1) !== -1) {
    throw new ReviewError(`GitHub repository ${JSON.stringify(repo)} is not "owner/name"`, {
      retryable: false,
      reason: "github_error",
    });
  }
  return { owner: repo.slice(0, i), repo: repo.slice(i + 1) };
}

function malformed(what: string): ReviewError {
  return new ReviewError(`GitHub ${what} answered with an unexpected body`, {
    retryable: true,
    reason: "github_error",
  });
}

/**
 * Creates the App authentication. The private key is checked at once ({@link normalizePrivateKey}
 * throws). `clock` decides token renewal and the owner cache's hour; the JWT itself is dated by
 * the real time, as GitHub checks it. `fetch` replaces the global one; each request is bounded by
 * `timeoutMs` (default 30 s).
 *
 * @example
 * ```ts
 * const auth = createGitHubAppAuth({
 *   kv, appId: 123, privateKey: Deno.env.get("GITHUB_APP_PRIVATE_KEY")!,
 *   baseUrl: "https://api.github.com",
 * });
 * const github = createGitHubClient({ baseUrl, token: await auth.installationToken(42) });
 * ```
 */
export function createGitHubAppAuth(options: {
  kv: Deno.Kv;
  appId: number | string;
  privateKey: string;
  baseUrl: string;
  clock?: () => number;
  fetch?: typeof fetch;
  renewBeforeMs?: number;
  timeoutMs?: number;
  userAgent?: string;
}): GitHubAppAuth {
  const { kv } = options;
  const privateKey = normalizePrivateKey(options.privateKey);
  const appId = String(options.appId).trim();
  if (!appId) throw new Error("GitHub App id is empty");
  const clock = options.clock ?? Date.now;
  const renewBeforeMs = options.renewBeforeMs ?? DEFAULT_RENEW_BEFORE_MS;
  const timeoutMs = options.timeoutMs ?? DEFAULT_GITHUB_TIMEOUT_MS;
  const octokit = new Octokit({
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    userAgent: options.userAgent ?? "ai-code-review-orchestrator",
    request: { fetch: options.fetch },
    log: silent,
  });
  const appAuth = createAppAuth({
    appId,
    privateKey,
    request: octokit.request,
    cache: noCache,
    log: silent,
  });
  /** Requests in flight, so concurrent calls share one; `forget` drops them. */
  const tokenRequests = new Map<number, { promise?: Promise<string> }>();
  const ownerRequests = new Map<string, { promise?: Promise<number> }>();
  /** Bumped by `forget`: an owner lookup started before must not store its answer. */
  let generation = 0;

  async function appJwt(what: string): Promise<string> {
    try {
      return (await appAuth({ type: "app" })).token;
    } catch {
      // The signing error is not passed on: it may describe the key.
      throw new ReviewError(`GitHub App ${appId} could not sign its JWT for ${what}`, {
        retryable: false,
        reason: "github_error",
      });
    }
  }

  /** One App request with the app JWT, bounded by `timeoutMs`, errors mapped. */
  async function appRequest(
    what: string,
    run: (headers: { authorization: string }, signal: AbortSignal) => Promise<unknown>,
    onStatus: (status: number) => ReviewError | undefined = () => undefined,
  ): Promise<unknown> {
    const jwt = await appJwt(what);
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      return await run({ authorization: `bearer ${jwt}` }, signal);
    } catch (error) {
      if (signal.aborted) {
        throw new ReviewError(`GitHub ${what} timed out after ${timeoutMs} ms`, {
          retryable: true,
          reason: "github_error",
          ambiguous: true,
        });
      }
      const status = (error as { response?: { status?: unknown } } | null)?.response?.status;
      const mapped = typeof status === "number" ? onStatus(status) : undefined;
      throw mapped ?? githubError(error, what, [jwt, privateKey, options.privateKey]);
    }
  }

  async function freshToken(installationId: number) {
    const what = `apps.createInstallationAccessToken ${installationId}`;
    const data = await appRequest(
      what,
      async (headers, signal) =>
        (await octokit.request("POST /app/installations/{installation_id}/access_tokens", {
          installation_id: installationId,
          headers,
          request: { signal },
        })).data,
    );
    const answer = TokenAnswer.safeParse(data);
    if (!answer.success) throw malformed(what);
    return { token: answer.data.token, expiresAt: Date.parse(answer.data.expires_at) };
  }

  function installationToken(installationId: number): Promise<string> {
    if (!Number.isSafeInteger(installationId) || installationId <= 0) {
      return Promise.reject(
        new ReviewError(`GitHub installation id ${installationId} is not a positive integer`, {
          retryable: false,
          reason: "github_error",
        }),
      );
    }
    const running = tokenRequests.get(installationId)?.promise;
    if (running) return running;
    const flight: { promise?: Promise<string> } = {};
    tokenRequests.set(installationId, flight);
    return flight.promise = (async () => {
      const stored = await readInstallationToken(kv, installationId);
      if (stored.entry && stored.entry.expiresAt - renewBeforeMs > clock()) {
        return stored.entry.token;
      }
      const fresh = await freshToken(installationId);
      // Not after a `forget` that came meanwhile, nor a token already due for renewal.
      const now = clock();
      if (tokenRequests.get(installationId) === flight && fresh.expiresAt - renewBeforeMs > now) {
        await storeInstallationToken(kv, installationId, fresh, {
          now,
          versionstamp: stored.versionstamp,
        });
      }
      return fresh.token;
    })().finally(() => {
      if (tokenRequests.get(installationId) === flight) tokenRequests.delete(installationId);
    });
  }

  function installationFor(repo: string): Promise<number> {
    let parts;
    try {
      parts = splitRepo(repo);
    } catch (error) {
      return Promise.reject(error);
    }
    const owner = parts.owner.toLowerCase();
    const running = ownerRequests.get(owner)?.promise;
    if (running) return running;
    const started = generation;
    const flight: { promise?: Promise<number> } = {};
    ownerRequests.set(owner, flight);
    return flight.promise = (async () => {
      const cached = await readOwnerInstallation(kv, owner, clock());
      if (cached !== null) return cached;
      const what = `apps.getRepoInstallation ${repo}`;
      const data = await appRequest(
        what,
        async (headers, signal) =>
          (await octokit.request("GET /repos/{owner}/{repo}/installation", {
            ...parts,
            headers,
            request: { signal },
          })).data,
        (status) =>
          status === 404
            ? new ReviewError(`GitHub App ${appId} is not installed on ${repo}`, {
              retryable: false,
              reason: "github_error",
              cause: { status },
            })
            : undefined,
      );
      const answer = InstallationAnswer.safeParse(data);
      if (!answer.success) throw malformed(what);
      if (generation === started) {
        await storeOwnerInstallation(kv, owner, answer.data.id, {
          now: clock(),
          ttlMs: INSTALLATION_CACHE_MS,
        });
      }
      return answer.data.id;
    })().finally(() => {
      if (ownerRequests.get(owner) === flight) ownerRequests.delete(owner);
    });
  }

  let login: Promise<string> | undefined;
  function botLogin(): Promise<string> {
    return login ??= (async () => {
      const data = await appRequest(
        "apps.getAuthenticated",
        async (headers, signal) =>
          (await octokit.request("GET /app", { headers, request: { signal } })).data,
      );
      const answer = AppAnswer.safeParse(data);
      if (!answer.success) throw malformed("apps.getAuthenticated");
      return `${answer.data.slug}[bot]`;
    })().catch((error) => {
      login = undefined; // ask again next time
      throw error;
    });
  }

  return {
    installationToken,
    installationFor,
    botLogin,
    async forget(installationId, ownerLogin) {
      generation++;
      tokenRequests.delete(installationId);
      ownerRequests.clear();
      await forgetInstallation(kv, installationId, ownerLogin);
    },
  };
}
