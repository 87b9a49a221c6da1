import assert from "node:assert/strict";
import { probeKvQueues, selectTransport } from "./select.ts";

Deno.test("auto picks kv-queue where kv.enqueue works and says why", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    assert.equal(await probeKvQueues(kv), true);
    const { transport, why } = await selectTransport(kv, "auto", { pollMs: 100 });
    assert.equal(transport.name, "kv-queue");
    assert.match(why, /kv\.enqueue works/);
    await transport.close();
  } finally {
    kv.close();
  }
});

Deno.test("auto picks kv-table where the runtime refuses queues (as Deno Deploy does)", async () => {
  const kv = await Deno.openKv(":memory:");
  const noQueues = new Proxy(kv, {
    get(target, prop) {
      if (prop === "enqueue") {
        return () => Promise.reject(new TypeError("Queues are not supported"));
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  try {
    const { transport, why } = await selectTransport(noQueues, "auto", { pollMs: 100 });
    assert.equal(transport.name, "kv-table");
    assert.match(why, /no queue support/);
    const explicit = await selectTransport(kv, "kv-table", { pollMs: 100 });
    assert.deepEqual([explicit.transport.name, explicit.why], [
      "kv-table",
      "QUEUE_TRANSPORT=kv-table",
    ]);
  } finally {
    kv.close();
  }
});
