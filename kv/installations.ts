/**
 * The GitHub App's installation state every instance shares: installation access tokens (until
 * they are due for renewal) and which installation covers an owner account (an hour). Entries
 * carry their own expiry; KV also drops them by `expireIn`, but only some time after it.
 *
 * @module
 */
import { retryTransaction } from "./commit.ts";
import { keys } from "./keys.ts";

/** `["github_installation_tokens", installationId]`: an installation access token. */
export interface InstallationTokenEntry {
  token: string;
  /** When GitHub says the token expires (ms since the epoch). */
  expiresAt: number;
}

/** `["github_installations", ownerLogin]`: the installation covering an owner account. */
export interface OwnerInstallationEntry {
  installationId: number;
  /** When the mapping stops being trusted (ms since the epoch). */
  expiresAt: number;
}

/** A stored token (or `null`) with the versionstamp to check when replacing it. */
export interface StoredToken {
  entry: InstallationTokenEntry | null;
  versionstamp: string | null;
}

function isTokenEntry(value: unknown): value is InstallationTokenEntry {
  const v = value as Partial<InstallationTokenEntry> | null;
  return typeof v?.token === "string" && v.token !== "" && typeof v.expiresAt === "number";
}

function isOwnerEntry(value: unknown): value is OwnerInstallationEntry {
  const v = value as Partial<OwnerInstallationEntry> | null;
  return typeof v?.installationId === "number" && typeof v.expiresAt === "number";
}

/** Owner logins are case-insensitive on GitHub; keys use the lower-cased form. */
function loginKey(ownerLogin: string): string {
  return ownerLogin.toLowerCase();
}

/**
 * The stored token of an installation, whatever time it has left (the caller decides whether it
 * is still good), with its versionstamp. A malformed value reads as `null`.
 *
 * @example
 * ```ts
 * const { entry, versionstamp } = await readInstallationToken(kv, 42);
 * if (entry && entry.expiresAt - 300_000 > Date.now()) use(entry.token);
 * ```
 */
export async function readInstallationToken(
  kv: Deno.Kv,
  installationId: number,
): Promise<StoredToken> {
  const got = await kv.get(keys.githubInstallationToken(installationId));
  return { entry: isTokenEntry(got.value) ? got.value : null, versionstamp: got.versionstamp };
}

/**
 * Stores a fresh token unless the entry changed since it was read at `versionstamp` (another
 * instance stored one, or `forgetInstallation` dropped it); KV drops it when it expires. Returns
 * whether it was stored.
 *
 * @example
 * ```ts
 * const read = await readInstallationToken(kv, 42);
 * await storeInstallationToken(kv, 42, { token, expiresAt }, {
 *   now: Date.now(), versionstamp: read.versionstamp,
 * });
 * ```
 */
export async function storeInstallationToken(
  kv: Deno.Kv,
  installationId: number,
  entry: InstallationTokenEntry,
  options: { now: number; versionstamp: string | null },
): Promise<boolean> {
  const key = keys.githubInstallationToken(installationId);
  const expireIn = Math.max(1_000, Math.ceil(entry.expiresAt - options.now));
  const result = await kv.atomic()
    .check({ key, versionstamp: options.versionstamp })
    .set(key, { token: entry.token, expiresAt: entry.expiresAt }, { expireIn })
    .commit();
  return result.ok;
}

/**
 * The installation covering an owner account, if a mapping is stored and not past its expiry at
 * `now`.
 *
 * @example
 * ```ts
 * const id = await readOwnerInstallation(kv, "Octo", Date.now()); // number | null
 * ```
 */
export async function readOwnerInstallation(
  kv: Deno.Kv,
  ownerLogin: string,
  now: number,
): Promise<number | null> {
  const got = await kv.get(keys.githubInstallation(loginKey(ownerLogin)));
  return isOwnerEntry(got.value) && got.value.expiresAt > now ? got.value.installationId : null;
}

/**
 * Maps an owner account to its installation for `ttlMs`, with the reverse index
 * `forgetInstallation` reads, in one commit.
 *
 * @example
 * ```ts
 * await storeOwnerInstallation(kv, "octo", 42, { now: Date.now(), ttlMs: 3_600_000 });
 * ```
 */
export function storeOwnerInstallation(
  kv: Deno.Kv,
  ownerLogin: string,
  installationId: number,
  options: { now: number; ttlMs: number },
): Promise<true> {
  const login = loginKey(ownerLogin);
  const key = keys.githubInstallation(login);
  const expireIn = Math.max(1_000, Math.ceil(options.ttlMs));
  return retryTransaction(`storeOwnerInstallation ${login}`, async () => {
    const previous = await kv.get(key);
    const op = kv.atomic().check(previous);
    if (isOwnerEntry(previous.value) && previous.value.installationId !== installationId) {
      op.delete(keys.githubInstallationOwner(previous.value.installationId, login));
    }
    const entry: OwnerInstallationEntry = {
      installationId,
      expiresAt: options.now + options.ttlMs,
    };
    op.set(key, entry, { expireIn })
      .set(keys.githubInstallationOwner(installationId, login), login, { expireIn });
    return (await op.commit()).ok ? true : undefined;
  });
}

/**
 * Drops an installation's token and every owner mapping pointing at it (the ones in the reverse
 * index, and `ownerLogin`'s).
 *
 * @example
 * ```ts
 * await forgetInstallation(kv, 42, "octo"); // after `installation.deleted`
 * ```
 */
export async function forgetInstallation(
  kv: Deno.Kv,
  installationId: number,
  ownerLogin?: string,
): Promise<void> {
  await kv.delete(keys.githubInstallationToken(installationId));
  const logins = new Set<string>();
  if (ownerLogin) logins.add(loginKey(ownerLogin));
  for await (const e of kv.list({ prefix: keys.githubInstallationOwnersOf(installationId) })) {
    const login = e.key[2];
    if (typeof login === "string") logins.add(login);
  }
  for (const login of logins) {
    await retryTransaction(`forgetInstallation ${installationId} ${login}`, async () => {
      const mapping = await kv.get(keys.githubInstallation(login));
      const op = kv.atomic().check(mapping)
        .delete(keys.githubInstallationOwner(installationId, login));
      if (isOwnerEntry(mapping.value) && mapping.value.installationId === installationId) {
        op.delete(mapping.key);
      }
      return (await op.commit()).ok ? true : undefined;
    });
  }
}
