/**
 * The repository's review settings for one review: `.github/ai-review.yml` at the pull request's
 * base commit (so a pull request cannot change the rules it is reviewed by), read once per
 * repository and commit and cached in KV for every instance.
 *
 * @module
 */
import { type CachedRepoConfig, readRepoConfig, storeRepoConfig } from "../kv/repo_configs.ts";
import type { GitHubClient } from "./github.ts";
import { parseRepoConfig, REPO_CONFIG_PATH, type RepoConfig } from "./repo_config.ts";

/** The largest configuration file read (a bigger one is a problem, named in the comment). */
const MAX_CONFIG_FILE_BYTES = 64 * 1024;

/**
 * The settings of `repo` at `baseSha`: from KV when cached, else read from GitHub, parsed and
 * cached. A missing file gives the defaults; an invalid one the defaults and its problems.
 *
 * @example
 * ```ts
 * const { config, problems } = await loadRepoConfig(kv, github, "octo/app", pr.baseSha);
 * if (!config.enabled) skip();
 * ```
 */
export async function loadRepoConfig(
  kv: Deno.Kv,
  github: Pick<GitHubClient, "getFile">,
  repo: string,
  baseSha: string,
): Promise<CachedRepoConfig<RepoConfig>> {
  const cached = await readRepoConfig<RepoConfig>(kv, repo, baseSha);
  if (cached) return cached;
  let parsed: CachedRepoConfig<RepoConfig>;
  try {
    const text = await github.getFile(repo, REPO_CONFIG_PATH, baseSha, MAX_CONFIG_FILE_BYTES);
    parsed = parseRepoConfig(text);
  } catch (error) {
    // A file too large to read is the repository's problem, not a reason to fail the review.
    if ((error as { cause?: { tooLarge?: boolean } }).cause?.tooLarge) {
      parsed = parseRepoConfig(null);
      parsed.problems = [`${REPO_CONFIG_PATH} is larger than 64 KiB; it was not read`];
    } else {
      throw error;
    }
  }
  await storeRepoConfig(kv, repo, baseSha, parsed);
  return parsed;
}
