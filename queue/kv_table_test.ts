import assert from "node:assert/strict";
import { createKvTableTransport } from "./kv_table.ts";
import type { QueueMessage } from "./message.ts";

const message = (reviewId: string): QueueMessage => ({ type: "run_review", reviewId, token: "t" });

async function send(
  kv: Deno.Kv,
  transport: ReturnType<typeof createKvTableTransport>,
  m: QueueMessage,
  delayMs = 0,
) {
  const op = kv.atomic();
  transport.enqueue(op, m, delayMs);
  assert.equal((await op.commit()).ok, true);
}

Deno.test("kv-table delivers each message once across two listeners, delays honoured", async () => {
  const kv = await Deno.openKv(":memory:");
  const a = createKvTableTransport(kv, { pollMs: 50, log: () => {} });
  const b = createKvTableTransport(kv, { pollMs: 50, log: () => {} });
  const seen: Array<{ id: string; by: string; at: number }> = [];
  const listening = [
    a.listen((m) =>
      Promise.resolve(void seen.push({ id: (m as QueueMessage).reviewId, by: "a", at: Date.now() }))
    ),
    b.listen((m) =>
      Promise.resolve(void seen.push({ id: (m as QueueMessage).reviewId, by: "b", at: Date.now() }))
    ),
  ];
  try {
    const sentAt = Date.now();
    for (let i = 0; i < 50; i++) await send(kv, a, message(`r${i}`));
    await send(kv, a, message("late"), 300);
    while (seen.length < 51 && Date.now() - sentAt < 5_000) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(seen.length, 51);
    assert.equal(new Set(seen.map((s) => s.id)).size, 51);
    const late = seen.find((s) => s.id === "late")!;
    assert.ok(late.at - sentAt >= 300, `late after ${late.at - sentAt} ms`);
    assert.deepEqual(await Array.fromAsync(kv.list({ prefix: ["queue_due"] })), []);
  } finally {
    await a.close();
    await b.close();
    await Promise.all(listening);
    kv.close();
  }
});

Deno.test("kv-table wakes a listener within milliseconds through kv.watch", async () => {
  const kv = await Deno.openKv(":memory:");
  const t = createKvTableTransport(kv, { pollMs: 60_000, log: () => {} });
  let deliveredAt = 0;
  const listening = t.listen(() => Promise.resolve(void (deliveredAt = Date.now())));
  try {
    await new Promise((r) => setTimeout(r, 50));
    const sentAt = Date.now();
    await send(kv, t, message("x"));
    while (!deliveredAt && Date.now() - sentAt < 2_000) await new Promise((r) => setTimeout(r, 2));
    assert.ok(deliveredAt > 0 && deliveredAt - sentAt < 500, `took ${deliveredAt - sentAt} ms`);
  } finally {
    await t.close();
    await listening;
    kv.close();
  }
});

Deno.test("kv-table redelivers a message whose handler failed", async () => {
  const kv = await Deno.openKv(":memory:");
  const t = createKvTableTransport(kv, { pollMs: 50, log: () => {} });
  let calls = 0;
  const listening = t.listen(() => {
    calls++;
    return calls === 1 ? Promise.reject(new Error("boom")) : Promise.resolve();
  });
  try {
    await send(kv, t, message("x"));
    const start = Date.now();
    while (calls < 2 && Date.now() - start < 5_000) await new Promise((r) => setTimeout(r, 10));
    assert.equal(calls, 2);
  } finally {
    await t.close();
    await listening;
    kv.close();
  }
});
