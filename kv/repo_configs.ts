/**
 * Parsed `.github/ai-review.yml` files, cached per repository and commit (a file at a commit never
 * changes), and the latest one read per repository (what the webhook consults for drafts).
 *
 * @module
 */
import { keys } from "./keys.ts";

/** How long a parsed configuration is kept. */
export const REPO_CONFIG_CACHE_MS = 24 * 60 * 60_000;

/**
 * A cached configuration: the parsed value and the problems found in the file.
 *
 * @example
 * ```ts
 * const cached: CachedRepoConfig<{ enabled: boolean }> = { config: { enabled: true }, problems: [] };
 * ```
 */
export interface CachedRepoConfig<T> {
  config: T;
  problems: string[];
}

/**
 * The configuration cached for `repo` at `sha`, or `null`.
 *
 * @example
 * ```ts
 * const cached = await readRepoConfig<RepoConfig>(kv, "octo/app", baseSha);
 * ```
 */
export async function readRepoConfig<T>(
  kv: Deno.Kv,
  repo: string,
  sha: string,
): Promise<CachedRepoConfig<T> | null> {
  return (await kv.get<CachedRepoConfig<T>>(keys.repoConfig(repo, sha))).value;
}

/**
 * Caches the configuration of `repo` at `sha` and records it as the repository's latest, in one
 * commit (a plain write: any two readers of one commit parse the same file).
 *
 * @example
 * ```ts
 * await storeRepoConfig(kv, "octo/app", baseSha, { config, problems: [] });
 * ```
 */
export async function storeRepoConfig<T>(
  kv: Deno.Kv,
  repo: string,
  sha: string,
  value: CachedRepoConfig<T>,
): Promise<void> {
  await kv.atomic()
    .set(keys.repoConfig(repo, sha), value, { expireIn: REPO_CONFIG_CACHE_MS })
    .set(keys.repoConfigLatest(repo), value, { expireIn: REPO_CONFIG_CACHE_MS })
    .commit();
}

/**
 * The configuration last read for `repo` (any commit), or `null`.
 *
 * @example
 * ```ts
 * const latest = await readLatestRepoConfig<RepoConfig>(kv, "octo/app");
 * if (latest?.config.drafts) reviewDraft();
 * ```
 */
export async function readLatestRepoConfig<T>(
  kv: Deno.Kv,
  repo: string,
): Promise<CachedRepoConfig<T> | null> {
  return (await kv.get<CachedRepoConfig<T>>(keys.repoConfigLatest(repo))).value;
}
