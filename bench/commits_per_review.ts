/**
 * KV commits per completed review, in-process: the real service over an in-memory KV, a fake
 * GitHub and an instant fake agent (`done` at once), every commit attributed to the function
 * that made it (from its stack). Prints one JSON line per transport.
 *
 * ```sh
 * deno run -A bench/commits_per_review.ts [reviews=200] [owners=20] [kv-table,kv-queue]
 * ```
 *
 * @module
 */
import { sseResponse } from "../tests/fakes/agent.ts";
import { pullRequestPayload, sha, startHarness, waitFor } from "../tests/harness.ts";
import type { TransportChoice } from "../tests/harness.ts";

/** Commits counted by caller, and in total. */
interface Attribution {
  total: number;
  byCaller: Map<string, number>;
}

/**
 * The first two named frames of the stack that are ours (retry helpers left out); the first
 * anonymous one (`file.ts:line`) when none is named (a timer's callback: a lease renewal).
 */
function callerOf(stack: string): string {
  const skip = /retryTransaction|withLockRetry|attributing|Proxy/;
  const frames: string[] = [];
  let anonymous: string | undefined;
  for (const line of stack.split("\n").slice(1)) {
    if (skip.test(line) || line.includes("bench/commits_per_review") || line.includes("ext:")) {
      continue;
    }
    const named = line.match(/at (?:async )?([^\s(]+) \(.*\/([^/]+)\.ts:\d+/);
    if (named) frames.push(`${named[2]}.${named[1]}`);
    const bare = line.match(/at (?:async )?file:.*\/([^/]+\.ts):(\d+)/);
    if (bare) anonymous ??= `${bare[1]}:${bare[2]}`;
    if (frames.length === 2) break;
  }
  return frames.join(" < ") || anonymous || "unknown";
}

/** A view of `kv` that attributes every commit (atomic, set, delete) to its caller. */
function attributingKv(kv: Deno.Kv, counts: Attribution): Deno.Kv {
  const count = () => {
    const caller = callerOf(new Error().stack ?? "");
    counts.total++;
    counts.byCaller.set(caller, (counts.byCaller.get(caller) ?? 0) + 1);
  };
  return new Proxy(kv, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      if (prop === "atomic") {
        return () => {
          const op = target.atomic();
          const proxy: Deno.AtomicOperation = new Proxy(op, {
            get(t, p) {
              const v = Reflect.get(t, p, t);
              if (typeof v !== "function") return v;
              if (p === "commit") {
                return async () => {
                  const stack = new Error().stack ?? "";
                  const result = await t.commit();
                  const caller = callerOf(stack) + (result.ok ? "" : " (conflict)");
                  counts.total++;
                  counts.byCaller.set(caller, (counts.byCaller.get(caller) ?? 0) + 1);
                  return result;
                };
              }
              return (...args: unknown[]) => {
                const r = v.apply(t, args);
                return r === t ? proxy : r;
              };
            },
          });
          return proxy;
        };
      }
      if (prop === "set" || prop === "delete") {
        return (...args: unknown[]) => {
          count();
          return value.apply(target, args);
        };
      }
      return value.bind(target);
    },
  });
}

async function measure(transport: TransportChoice, reviews: number, owners: number) {
  const counts: Attribution = { total: 0, byCaller: new Map() };
  const h = await startHarness({
    transport,
    wrapKv: (kv) => attributingKv(kv, counts),
    script: () => sseResponse([{ event: "done", data: {} }]),
    env: { FAST_PATH: "true", LEASE_MS: "30000", SWEEP_INTERVAL_MS: "15000" },
  });
  try {
    const ids: string[] = [];
    const started = Date.now();
    // A few webhooks at a time, as GitHub would send them.
    const CONCURRENCY = 8;
    let next = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < reviews) {
        const i = next++;
        const ownerId = 1000 + (i % owners);
        const number = i + 1;
        h.github.setPull({
          owner: `owner${ownerId}`,
          repo: "service",
          number,
          headSha: sha(number),
        });
        const res = await h.sendWebhook(
          "pull_request",
          pullRequestPayload({ ownerId, number, headSha: sha(number) }),
        );
        if (res.status !== 202) throw new Error(`webhook answered ${res.status}`);
        ids.push(String(res.body.reviewId));
      }
    }));
    await waitFor("every review completed", async () => {
      const done = await Promise.all(
        ids.map((id) => h.kv.get<{ status: string }>(["reviews", id])),
      );
      return done.every((e) => e.value?.status === "completed") ? true : undefined;
    }, 300_000);
    // Let trailing writes (live mark, message deletes) land.
    await new Promise((r) => setTimeout(r, 500));
    const queueLeft = (await Array.fromAsync(h.kv.list({ prefix: ["queue_due"] }))).length;
    // How long reviews ran (start → end): lease renewals come one per LEASE_MS / 3 of it.
    const records = await Promise.all(
      ids.map((id) => h.kv.get<{ startedAt: number; finishedAt: number }>(["reviews", id])),
    );
    const ran = records.map((e) => e.value!.finishedAt - e.value!.startedAt).sort((a, b) => a - b);
    const at = (q: number) => ran[Math.min(ran.length - 1, Math.floor(q * ran.length))];
    const byCaller = Object.fromEntries(
      [...counts.byCaller].sort((a, b) => b[1] - a[1]).map((
        [k, v],
      ) => [k, Math.round((v / reviews) * 100) / 100]),
    );
    console.log(JSON.stringify({
      transport,
      reviews,
      owners,
      seconds: (Date.now() - started) / 1000,
      commitsPerReview: Math.round((counts.total / reviews) * 100) / 100,
      queueMessagesLeft: queueLeft,
      runningMs: { p50: at(0.5), p90: at(0.9), max: ran.at(-1) },
      byCaller,
    }));
  } finally {
    await h.close();
  }
}

if (import.meta.main) {
  const reviews = Number(Deno.args[0] ?? 200);
  const owners = Number(Deno.args[1] ?? 20);
  const transports = (Deno.args[2] ?? "kv-table,kv-queue").split(",") as TransportChoice[];
  for (const t of transports) await measure(t, reviews, owners);
}
