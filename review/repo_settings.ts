/**
 * The repository's review settings for one review: `.github/ai-review.yml` at the pull request's
 * base commit (so a pull request cannot change the rules it is reviewed by), read once per
 * repository and commit and cached in KV for every instance.
 *
 * @module
 */
import { type CachedRepoConfig, readRepoConfig, storeRepoConfig } from "../kv/repo_configs.ts";
import type { GitHubClient } from "./github.ts";
import { splitDiff, truncateDiff } from "./diff.ts";
import { ReviewError } from "./errors.ts";
import {
  describeLeftOut,
  parseRepoConfig,
  REPO_CONFIG_PATH,
  type RepoConfig,
  selectDiff,
} from "./repo_config.ts";

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
    } else if (error instanceof ReviewError && !error.retryable) {
      // Refused (a 403: the installation has not accepted the Contents permission): review with
      // the defaults, say so, and ask again next time (nothing is cached).
      const status = (error.cause as { status?: number } | undefined)?.status;
      const fallback = parseRepoConfig(null);
      return {
        config: fallback.config,
        problems: [
          `${REPO_CONFIG_PATH} could not be read (GitHub answered ${status ?? "an error"}); ` +
          "check that the App has the Contents: read permission",
        ],
      };
    } else {
      throw error;
    }
  }
  await storeRepoConfig(kv, repo, baseSha, parsed);
  return parsed;
}

/**
 * The diff the agent is given: ignored, not-included and binary files removed file by file, at
 * most `max_files` files, cut on a file boundary at the smaller of `max_diff_bytes` and the
 * service's `maxBytes`. When not even the first file fits, that file is cut at a line instead, so
 * the agent still sees the start of the change. `leftOut` says, one line per reason, what the agent
 * did not see.
 *
 * @example
 * ```ts
 * const { diff, files, leftOut } = diffForAgent(fullDiff, config, 2 * 1024 * 1024);
 * ```
 */
export function diffForAgent(
  fullDiff: string,
  config: RepoConfig,
  maxBytes: number,
): { diff: string; files: string[]; leftOut: string[] } {
  const limit = Math.min(maxBytes, config.max_diff_bytes ?? Infinity);
  const selected = selectDiff(fullDiff, config, { maxBytes: limit });
  const tooBig = selected.leftOut.filter((l) => l.why === "max_diff_bytes");
  if (selected.files.length > 0 || tooBig.length === 0) {
    return {
      diff: selected.diff,
      files: selected.files,
      leftOut: describeLeftOut(selected.leftOut),
    };
  }
  const first = splitDiff(fullDiff).find((f) => f.path === tooBig[0].path)!;
  const cut = truncateDiff(first.text, limit).diff;
  const rest = selected.leftOut.filter((l) => l !== tooBig[0]);
  return {
    diff: cut,
    files: [first.path],
    leftOut: [
      `${first.path} was cut at ${limit} bytes (the diff limit)`,
      ...describeLeftOut(rest),
    ],
  };
}
