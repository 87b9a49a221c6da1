import assert from "node:assert/strict";
import { truncateUtf8 } from "./text.ts";

Deno.test("truncateUtf8 keeps short text and cuts long text on a character boundary", () => {
  assert.equal(truncateUtf8("short", 10), "short");
  assert.equal(truncateUtf8("héllo", 4), "h…");
  const emoji = "😀".repeat(100);
  const cut = truncateUtf8(emoji, 50);
  assert.ok(new TextEncoder().encode(cut).length <= 50);
  assert.ok(!cut.includes("\uFFFD"));
  assert.ok(cut.endsWith("…"));
});
