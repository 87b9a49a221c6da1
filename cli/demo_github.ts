/**
 * The demo's GitHub side: the test suite's fake GitHub REST API with a handful of realistic pull
 * requests on it, a little latency in front (so a review takes long enough to watch), and the
 * signed `pull_request.opened` webhooks that announce those pull requests.
 *
 * @module
 */
import { sign } from "@octokit/webhooks-methods";
import examples from "@octokit/webhooks-examples" with { type: "json" };
import { EVAL_AND_KEY_DIFF, type FakeGitHub, startFakeGitHub } from "../tests/fakes/github.ts";

/**
 * A pull request of the demo.
 *
 * @example
 * ```ts
 * const pull: DemoPull = {
 *   owner: "acme", ownerId: 1001, ownerType: "Organization", repo: "api", number: 1,
 *   title: "Fix", diff: "", headSha: "a".repeat(40),
 * };
 * ```
 */
export interface DemoPull {
  owner: string;
  ownerId: number;
  ownerType: "Organization" | "User";
  repo: string;
  number: number;
  title: string;
  diff: string;
  headSha: string;
}

/** A diff that creates `path` with `lines` (new files keep the diffs short and readable). */
function newFile(path: string, lines: string[]): string {
  return [
    `diff --git a/${path} b/${path}`,
    "new file mode 100644",
    "--- /dev/null",
    `+++ b/${path}`,
    `@@ -0,0 +1,${lines.length} @@`,
    ...lines.map((line) => `+${line}`),
    "",
  ].join("\n");
}

const ACME = { owner: "acme", ownerId: 1001, ownerType: "Organization" } as const;
const MONA = { owner: "mona", ownerId: 2002, ownerType: "User" } as const;

/** What each demo pull request changes: most bring something the local reviewer flags. */
const PULLS: Array<Omit<DemoPull, "headSha">> = [
  { ...ACME, repo: "api", number: 101, title: "Evaluate pricing rules", diff: EVAL_AND_KEY_DIFF },
  {
    ...ACME,
    repo: "api",
    number: 102,
    title: "Search users by name",
    diff: newFile("src/users.ts", [
      "export async function findUsers(db: Db, name: string) {",
      '  return await db.query("SELECT * FROM users WHERE name = \'" + name + "\'");',
      "}",
    ]),
  },
  {
    ...ACME,
    repo: "api",
    number: 103,
    title: "Thumbnails with ImageMagick",
    diff: newFile("src/thumbs.js", [
      "import { exec } from 'node:child_process';",
      "export const thumb = (file) => exec(`convert ${file} -resize 64x64 thumb.png`);",
    ]),
  },
  {
    ...ACME,
    repo: "web",
    number: 7,
    title: "Debug the login flow",
    diff: newFile("src/login.ts", [
      "export function login(user: string) {",
      "  console.log('login', user);",
      "  // TODO: rate-limit attempts",
      "  return fetch('/session', { method: 'POST', body: user });",
      "}",
    ]),
  },
  {
    ...ACME,
    repo: "web",
    number: 8,
    title: "Fix a typo in the README",
    diff: newFile("docs/intro.md", ["# Welcome", "", "Start with `deno task dev`."]),
  },
  {
    ...ACME,
    repo: "infra",
    number: 12,
    title: "Deploy script",
    diff: newFile("deploy.py", [
      "import subprocess",
      "db_password = 'hunter2-prod-2024'",
      "subprocess.run(f'ssh deploy@{host} ./release.sh', shell=True)",
    ]),
  },
  {
    ...MONA,
    repo: "dotfiles",
    number: 3,
    title: "Nightly backup",
    diff: newFile("backup.py", [
      "import os",
      "os.system('tar czf /backup/home.tgz ' + home)",
    ]),
  },
  {
    ...MONA,
    repo: "blog",
    number: 1,
    title: "New post: Deno KV",
    diff: newFile("posts/deno-kv.md", ["# Deno KV", "", "A key-value store, built in."]),
  },
  {
    ...MONA,
    repo: "blog",
    number: 2,
    title: "Comment form",
    diff: newFile("src/comments.ts", [
      "const token = 'ghp_0123456789abcdefghijABCDEFGHIJ012345';",
      "export const post = (text: string) => fetch(API, { method: 'POST', body: text });",
    ]),
  },
];

/**
 * The demo's pull requests: 6 of the organization `acme`, 3 of the user `mona`.
 *
 * @example
 * ```ts
 * DEMO_PULLS.filter((p) => p.owner === "acme").length; // 6
 * ```
 */
export const DEMO_PULLS: readonly DemoPull[] = PULLS.map((p) => ({
  ...p,
  // Random, like real commits: short shas in comments then look like GitHub's.
  headSha: Array.from(
    crypto.getRandomValues(new Uint8Array(20)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join(""),
}));

/**
 * A running GitHub stand-in.
 *
 * @example
 * ```ts
 * const gh = await startDemoGitHub(DEMO_PULLS, 150);
 * console.log(gh.url, gh.fake.comments.length);
 * await gh.close();
 * ```
 */
export interface DemoGitHub {
  /** Base URL to give the service as `GITHUB_API_URL` (the latency proxy). */
  url: string;
  /** The fake behind the proxy: what GitHub received (comments, requests). */
  fake: FakeGitHub;
  close(): Promise<void>;
}

/**
 * Starts the fake GitHub with `pulls` on it, behind a proxy that answers every request
 * `latencyMs` later: the local reviewer takes milliseconds, so without it the reviews would
 * finish before anyone could see one wait for its owner's slot.
 *
 * @example
 * ```ts
 * const gh = await startDemoGitHub(DEMO_PULLS, 150);
 * await gh.close();
 * ```
 */
export async function startDemoGitHub(
  pulls: readonly DemoPull[],
  latencyMs: number,
): Promise<DemoGitHub> {
  const fake = await startFakeGitHub();
  for (const p of pulls) {
    fake.setPull({
      owner: p.owner,
      repo: p.repo,
      number: p.number,
      title: p.title,
      headSha: p.headSha,
      diff: p.diff,
    });
  }
  const proxy = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    await new Promise((resolve) => setTimeout(resolve, latencyMs));
    const url = new URL(req.url);
    const body = req.body ? await req.arrayBuffer() : undefined;
    const res = await fetch(fake.url + url.pathname + url.search, {
      method: req.method,
      headers: req.headers,
      body,
    });
    // Re-wrapped: the fake's body was already decoded, so its length headers no longer hold.
    const headers = new Headers(res.headers);
    headers.delete("content-length");
    headers.delete("content-encoding");
    return new Response(await res.arrayBuffer(), { status: res.status, headers });
  });
  return {
    url: `http://127.0.0.1:${proxy.addr.port}`,
    fake,
    async close() {
      await proxy.shutdown();
      await fake.close();
    },
  };
}

type Example = { name: string; examples: Record<string, unknown>[] };

/**
 * The real `pull_request.opened` example from `@octokit/webhooks-examples`, adapted to `pull`.
 *
 * @example
 * ```ts
 * const payload = openedPayload(DEMO_PULLS[0]);
 * ```
 */
export function openedPayload(pull: DemoPull): Record<string, unknown> {
  const group = (examples as unknown as Example[]).find((e) => e.name === "pull_request")!;
  const payload = structuredClone(group.examples.find((e) => e.action === "opened")!) as {
    number: number;
    pull_request: Record<string, unknown> & { head: { sha: string }; base: { sha: string } };
    repository: Record<string, unknown> & { owner: Record<string, unknown> };
    installation?: unknown;
  };
  payload.number = pull.number;
  Object.assign(payload.pull_request, {
    number: pull.number,
    title: pull.title,
    draft: false,
    state: "open",
    updated_at: new Date().toISOString(),
  });
  payload.pull_request.head.sha = pull.headSha;
  payload.pull_request.base.sha = "b".repeat(40);
  payload.repository.full_name = `${pull.owner}/${pull.repo}`;
  payload.repository.name = pull.repo;
  payload.repository.owner = {
    ...payload.repository.owner,
    id: pull.ownerId,
    login: pull.owner,
    type: pull.ownerType,
  };
  // The demo authenticates with a token, not as a GitHub App installation.
  delete payload.installation;
  return payload;
}

/**
 * Sends `payload` as a signed `pull_request` delivery to the service at `serviceUrl`.
 *
 * @example
 * ```ts
 * const { status, body } = await sendWebhook(url, secret, openedPayload(DEMO_PULLS[0]));
 * ```
 */
export async function sendWebhook(
  serviceUrl: string,
  secret: string,
  payload: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const text = JSON.stringify(payload);
  const res = await fetch(`${serviceUrl}/webhooks/github`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-github-event": "pull_request",
      "x-github-delivery": crypto.randomUUID(),
      "x-hub-signature-256": await sign(secret, text),
    },
    body: text,
  });
  return { status: res.status, body: await res.json().catch(() => ({})) };
}
