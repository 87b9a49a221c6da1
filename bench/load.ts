/**
 * A closed-loop HTTP load generator for signed webhooks: `connections` clients each send their
 * next request as soon as the previous answer arrives.
 *
 * @module
 */
import { sign } from "@octokit/webhooks-methods";
import { pullRequestPayload, sha } from "../tests/harness.ts";

/** One prepared delivery. */
export interface Delivery {
  body: string;
  signature: string;
  event: string;
}

/** What one load run measured. */
export interface LoadResult {
  requests: number;
  seconds: number;
  rps: number;
  /** Every answer's latency in milliseconds, in completion order. */
  latencies: number[];
  statuses: Record<string, number>;
}

/**
 * `count` signed `pull_request.opened` deliveries for distinct pull requests spread over
 * `owners` owners (`owner<1..owners>`), numbered from `firstNumber`.
 *
 * @example
 * ```ts
 * const deliveries = await prepareDeliveries({ count: 100, owners: 50, firstNumber: 1, secret });
 * ```
 */
export async function prepareDeliveries(options: {
  count: number;
  owners: number;
  firstNumber: number;
  secret: string;
  ownerOffset?: number;
}): Promise<Delivery[]> {
  const out: Delivery[] = [];
  for (let i = 0; i < options.count; i++) {
    const n = options.firstNumber + i;
    const ownerId = (options.ownerOffset ?? 0) + 1 + (n % options.owners);
    const body = JSON.stringify(pullRequestPayload({ ownerId, number: n, headSha: sha(n) }));
    out.push({ body, signature: await sign(options.secret, body), event: "pull_request" });
  }
  return out;
}

/**
 * Posts one delivery to a webhook URL, with a fresh delivery id.
 *
 * @example
 * ```ts
 * const res = await postDelivery(`${url}/webhooks/github`, deliveries[0]);
 * ```
 */
export function postDelivery(url: string, d: Delivery): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-github-event": d.event,
      "x-github-delivery": crypto.randomUUID(),
      "x-hub-signature-256": d.signature,
    },
    body: d.body,
  });
}

/**
 * Sends `deliveries` to `url` over `connections` concurrent clients.
 *
 * @example
 * ```ts
 * const { rps, latencies } = await runLoad(`${url}/webhooks/github`, deliveries, 32);
 * ```
 */
export async function runLoad(
  url: string,
  deliveries: Delivery[],
  connections: number,
): Promise<LoadResult> {
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: connections }, async () => {
    while (next < deliveries.length) {
      const d = deliveries[next++];
      const start = performance.now();
      const res = await postDelivery(url, d);
      await res.arrayBuffer();
      latencies.push(performance.now() - start);
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  return {
    requests: deliveries.length,
    seconds,
    rps: deliveries.length / seconds,
    latencies,
    statuses,
  };
}
