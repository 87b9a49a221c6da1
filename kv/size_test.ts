import assert from "node:assert/strict";
import { kvStringBytes, kvValueBytes, MAX_KV_VALUE_BYTES, truncateForKv } from "./size.ts";

Deno.test("kvValueBytes is the size Deno KV checks: 65,536 fits, one byte more does not", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    for (
      const make of [(n: number) => "a".repeat(n), (n: number) => ({ t: "x".repeat(n) + "😀" })]
    ) {
      // Find the largest value that serializes to at most the limit.
      let [n, hi] = [0, MAX_KV_VALUE_BYTES];
      while (n < hi) {
        const mid = Math.ceil((n + hi) / 2);
        if (kvValueBytes(make(mid)) <= MAX_KV_VALUE_BYTES) n = mid;
        else hi = mid - 1;
      }
      await kv.set(["v"], make(n));
      await assert.rejects(() => kv.set(["v"], make(n + 1)));
    }
  } finally {
    kv.close();
  }
});

Deno.test("one character outside Latin-1 doubles a string's size; truncateForKv bounds it", () => {
  assert.equal(kvStringBytes("héllo"), 5);
  assert.equal(kvStringBytes("a".repeat(100) + "😀"), 204);
  const cut = truncateForKv("a".repeat(100_000) + "中", 2_048);
  assert.ok(kvStringBytes(cut) <= 2_048);
  assert.equal(truncateForKv("short", 2_048), "short");
  assert.ok(!/[\uD800-\uDBFF]…$/.test(truncateForKv("😀".repeat(5_000), 101)));
});
