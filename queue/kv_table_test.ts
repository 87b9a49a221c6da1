import assert from "node:assert/strict";
import { claimDueMessages } from "../kv/queue_table.ts";
import { createKvQueueTransport } from "./kv_queue.ts";
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

Deno.test("kv-table: a message dropped by a later commit is never delivered", async () => {
  const kv = await Deno.openKv(":memory:");
  const t = createKvTableTransport(kv, { pollMs: 20, log: () => {} });
  const op = kv.atomic();
  const ref = t.enqueue(op, message("dropped"), 0);
  assert.equal((await op.commit()).ok, true);
  assert.ok(ref, "kv-table tells where it keeps the message");
  const start = kv.atomic().set(["reviews", "dropped"], "running");
  t.drop(start, ref);
  assert.equal((await start.commit()).ok, true);
  const seen: string[] = [];
  const listening = t.listen((m) => Promise.resolve(void seen.push((m as QueueMessage).reviewId)));
  try {
    await send(kv, t, message("kept"));
    const since = Date.now();
    while (seen.length < 1 && Date.now() - since < 2_000) {
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(seen, ["kept"]);
    assert.deepEqual(await Array.fromAsync(kv.list({ prefix: ["queue_due"] })), []);
  } finally {
    await t.close();
    await listening;
    kv.close();
  }
});

Deno.test("kv-table: a drop after a listener claimed the message leaves the claimed copy", async () => {
  const kv = await Deno.openKv(":memory:");
  const t = createKvTableTransport(kv, { pollMs: 20, log: () => {} });
  const op = kv.atomic();
  const ref = t.enqueue(op, message("r"), 0)!;
  assert.equal((await op.commit()).ok, true);
  const [claimed] = await claimDueMessages(kv, Date.now(), 30_000, 10);
  assert.equal((claimed.message as QueueMessage).reviewId, "r");
  const start = kv.atomic();
  t.drop(start, ref);
  assert.equal((await start.commit()).ok, true, "dropping a moved message is a harmless no-op");
  const left = await Array.fromAsync(kv.list({ prefix: ["queue_due"] }));
  assert.deepEqual(left.map((e) => e.key), [claimed.key]);
  // Only a message key is ever deleted through a ref.
  assert.throws(() => t.drop(kv.atomic(), ["reviews", "r"]), /not a kv-table message key/);
  kv.close();
});

Deno.test("kv-table: a held message waits for its release, without the listener spinning", async () => {
  const kv = await Deno.openKv(":memory:");
  let reads = 0;
  const counted = new Proxy(kv, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      if (prop === "list") reads++;
      return value.bind(target);
    },
  });
  const t = createKvTableTransport(counted, { pollMs: 1_000, log: () => {} });
  const seen: string[] = [];
  const listening = t.listen((m) => Promise.resolve(void seen.push((m as QueueMessage).reviewId)));
  try {
    await new Promise((r) => setTimeout(r, 50));
    const op = kv.atomic();
    const ref = t.enqueue(op, message("held"), 0)!;
    const release = t.holdHere!(ref);
    assert.equal((await op.commit()).ok, true);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(seen, [], "this instance's listener leaves a held message alone");
    assert.ok(reads < 10, `${reads} list reads while held (the loop must not spin)`);
    release();
    t.wake!();
    const since = Date.now();
    while (seen.length < 1 && Date.now() - since < 2_000) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.deepEqual(seen, ["held"], "released and still there: delivered as usual");
  } finally {
    await t.close();
    await listening;
    kv.close();
  }
});

Deno.test("kv-queue: a sent message cannot be dropped: no ref, and drop does nothing", async () => {
  const kv = await Deno.openKv(":memory:");
  const t = createKvQueueTransport(kv);
  const op = kv.atomic();
  assert.equal(t.enqueue(op, message("r"), 60_000), undefined);
  t.drop(op, ["queue_due", 1, "x"]);
  assert.equal((await op.commit()).ok, true);
  assert.equal(t.holdHere, undefined);
  kv.close();
});
