import assert from "node:assert/strict";
import { countingKv, emptyKvOpCounts } from "./op_counts.ts";

Deno.test("countingKv counts commits, conflicts and reads, and passes results through", async () => {
  const raw = await Deno.openKv(":memory:");
  try {
    const counts = emptyKvOpCounts();
    const kv = countingKv(raw, counts);
    await kv.set(["a"], 1);
    const a = await kv.get<number>(["a"]);
    assert.equal(a.value, 1);
    await kv.getMany([["a"], ["b"]]);
    assert.equal((await Array.fromAsync(kv.list({ prefix: [] }))).length, 1);
    const ok = await kv.atomic().check(a).set(["a"], 2).sum(["n"], 1n).commit();
    assert.equal(ok.ok, true);
    const stale = await kv.atomic().check(a).set(["a"], 3).commit();
    assert.equal(stale.ok, false);
    await kv.delete(["n"]);
    assert.deepEqual(counts, { commits: 4, conflicts: 1, reads: 3 });
    assert.equal((await raw.get(["a"])).value, 2);
  } finally {
    raw.close();
  }
});
