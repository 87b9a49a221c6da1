/**
 * Webhook ingest throughput through the real server (`deno run main.ts` as its own process, KV
 * file), with reviews running against a fake agent at the same time.
 *
 *   deno run -A bench/ingest.ts [webhooks=2000] [concurrency=32] [transport=kv-queue]
 */
import { sign } from "@octokit/webhooks-methods";
import { sseResponse, startFakeAgent } from "../tests/fakes/agent.ts";
import { startFakeGitHub } from "../tests/fakes/github.ts";
import { pullRequestPayload, sha, WEBHOOK_SECRET } from "../tests/harness.ts";
import { spawnService } from "../tests/process.ts";
import { describe } from "./stats.ts";

const TOTAL = Number(Deno.args[0] ?? 2000);
const CONCURRENCY = Number(Deno.args[1] ?? 32);
const TRANSPORT = Deno.args[2] ?? "kv-queue";
const OWNERS = 50;

const dir = await Deno.makeTempDir();
const github = await startFakeGitHub();
const agent = await startFakeAgent(() => sseResponse([{ event: "done", data: {} }]));
const service = await spawnService({
  KV_PATH: `${dir}/kv.sqlite3`,
  GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
  GITHUB_TOKEN: "t",
  GITHUB_API_URL: github.url,
  AGENT_URL: agent.url,
  BACKEND_AUTH_TOKEN: "b",
  QUEUE_TRANSPORT: TRANSPORT,
});
const bodies = await Promise.all(Array.from({ length: TOTAL }, async (_, i) => {
  const ownerId = 1 + (i % OWNERS);
  github.setPull({ owner: `owner${ownerId}`, repo: "service", number: i + 1, headSha: sha(i + 1) });
  const body = JSON.stringify(pullRequestPayload({ ownerId, number: i + 1, headSha: sha(i + 1) }));
  return { body, signature: await sign(WEBHOOK_SECRET, body) };
}));

const latencies: number[] = [];
const statuses = new Map<number, number>();
let next = 0;
const t0 = performance.now();
await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
  while (next < TOTAL) {
    const { body, signature } = bodies[next++];
    const start = performance.now();
    const res = await fetch(`${service.url}/webhooks/github`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-github-event": "pull_request",
        "x-github-delivery": crypto.randomUUID(),
        "x-hub-signature-256": signature,
      },
      body,
    });
    await res.body?.cancel();
    latencies.push(performance.now() - start);
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
  }
}));
const seconds = (performance.now() - t0) / 1000;
console.log(
  `${TOTAL} signed webhooks, ${CONCURRENCY} concurrent, ${OWNERS} owners, ${TRANSPORT}: ` +
    `${(TOTAL / seconds).toFixed(0)} accepted/s, latency ${describe(latencies)}, ` +
    `statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
);
await service.stop("SIGTERM");
await agent.close();
await github.close();
await Deno.remove(dir, { recursive: true });
