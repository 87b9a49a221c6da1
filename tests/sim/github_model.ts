/**
 * The simulation's GitHub: pull requests (head, open or closed, `updated_at`) and their issue
 * comments, behind the `GitHubClient` methods `postOnce` uses, with injected failures (a create
 * that fails, one that is created but answered with an ambiguous error, one that is not created
 * and answered ambiguously, a failed edit).
 *
 * @module
 */
import { ReviewError } from "../../review/errors.ts";
import type { CommentClient, PostedComment, PullRequestInfo } from "../../review/github.ts";
import type { Rng } from "./rng.ts";

/** One owner of repositories, with its per-owner slot limit. */
export interface OwnerModel {
  index: number;
  type: "org" | "user";
  id: string;
  login: string;
  /** `${type}:${id}`. */
  key: string;
  limit: number;
  /** Relative webhook activity. */
  weight: number;
  prs: PrModel[];
}

/** One pull request as GitHub sees it. */
export interface PrModel {
  /** `${repo}#${number}`. */
  key: string;
  index: number;
  owner: OwnerModel;
  repo: string;
  number: number;
  open: boolean;
  headSeq: number;
  head: string;
  /** `pull_request.updated_at` (ms) of the last push or reopen. */
  updatedAt: number;
  comments: number[];
  /** Recent events of this pull request, for failure reports. */
  log: string[];
}

/** Failure rates of GitHub calls. */
export interface GitHubFaults {
  createFails: number;
  createAmbiguousCreated: number;
  createAmbiguousLost: number;
  updateFails: number;
}

/** A 40-character sha naming head `seq` of pull request `prIndex`. */
export function shaOf(prIndex: number, seq: number): string {
  return (prIndex.toString(16).padStart(8, "0") + seq.toString(16).padStart(8, "0"))
    .padEnd(40, "0");
}

/** The comment store and the client `postOnce` talks to. */
export class GitHubModel implements CommentClient {
  readonly prs = new Map<string, PrModel>();
  readonly comments = new Map<number, { pr: PrModel; body: string }>();
  #nextId = 1;
  readonly #rng: Rng;
  readonly #faults: GitHubFaults;
  readonly #onCreate: (pr: PrModel) => void;
  stats = { created: 0, updated: 0, failed: 0, ambiguous: 0 };

  constructor(rng: Rng, faults: GitHubFaults, onCreate: (pr: PrModel) => void) {
    this.#rng = rng;
    this.#faults = faults;
    this.#onCreate = onCreate;
  }

  #pr(repo: string, pullNumber: number): PrModel {
    const pr = this.prs.get(`${repo}#${pullNumber}`);
    if (!pr) throw new Error(`no pull request ${repo}#${pullNumber} in the model`);
    return pr;
  }

  #url(pr: PrModel, id: number): string {
    return `https://github.com/${pr.repo}/pull/${pr.number}#issuecomment-${id}`;
  }

  getPullRequest(repo: string, pullNumber: number): Promise<PullRequestInfo> {
    const pr = this.#pr(repo, pullNumber);
    return Promise.resolve({
      headSha: pr.head,
      baseSha: "b".repeat(40),
      title: `Pull ${pr.number}`,
      state: pr.open ? "open" : "closed",
      draft: false,
    } as PullRequestInfo);
  }

  getDiff(): Promise<string> {
    return Promise.reject(new Error("getDiff is not modelled"));
  }

  upsertComment(): Promise<PostedComment> {
    return Promise.reject(new Error("upsertComment is not modelled (postOnce does not use it)"));
  }

  createComment(repo: string, pullNumber: number, body: string): Promise<PostedComment> {
    const pr = this.#pr(repo, pullNumber);
    const f = this.#faults;
    if (this.#rng.chance(f.createFails)) {
      this.stats.failed++;
      return Promise.reject(
        new ReviewError("GitHub answered 422", { retryable: true, reason: "github_error" }),
      );
    }
    if (this.#rng.chance(f.createAmbiguousLost)) {
      this.stats.ambiguous++;
      return Promise.reject(
        new ReviewError("GitHub timed out", {
          retryable: true,
          reason: "github_error",
          ambiguous: true,
        }),
      );
    }
    const id = this.#nextId++;
    this.comments.set(id, { pr, body });
    pr.comments.push(id);
    this.stats.created++;
    this.#onCreate(pr);
    if (this.#rng.chance(f.createAmbiguousCreated)) {
      this.stats.ambiguous++;
      return Promise.reject(
        new ReviewError("GitHub answered 502", {
          retryable: true,
          reason: "github_error",
          ambiguous: true,
        }),
      );
    }
    return Promise.resolve({ id, url: this.#url(pr, id) });
  }

  updateComment(repo: string, commentId: number, body: string): Promise<PostedComment | null> {
    if (this.#rng.chance(this.#faults.updateFails)) {
      this.stats.failed++;
      return Promise.reject(
        new ReviewError("GitHub answered 500", { retryable: true, reason: "github_error" }),
      );
    }
    const c = this.comments.get(commentId);
    if (!c || c.pr.repo !== repo) return Promise.resolve(null);
    c.body = body;
    this.stats.updated++;
    return Promise.resolve({ id: commentId, url: this.#url(c.pr, commentId) });
  }

  findComment(repo: string, pullNumber: number, marker: string): Promise<PostedComment | null> {
    const pr = this.#pr(repo, pullNumber);
    for (const id of pr.comments) {
      if (this.comments.get(id)!.body.startsWith(marker)) {
        return Promise.resolve({ id, url: this.#url(pr, id) });
      }
    }
    return Promise.resolve(null);
  }

  /** A user deletes the pull request's comment. */
  deleteComment(pr: PrModel): boolean {
    const id = pr.comments.shift();
    if (id === undefined) return false;
    this.comments.delete(id);
    return true;
  }
}
