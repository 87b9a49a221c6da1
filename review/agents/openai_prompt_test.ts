import assert from "node:assert/strict";
import fc from "fast-check";
import { type AddedLine, addedLines, splitDiff } from "../diff.ts";
import { ReviewError } from "../errors.ts";
import {
  buildMessages,
  chunkDiff,
  type DiffChunk,
  promptBytes,
  type PromptInput,
  SYSTEM_PROMPT,
} from "./openai_prompt.ts";

const input: PromptInput = { title: "Add login", body: "Closes #3", instructions: "Check auth" };

/** A hunk of `lines` ("+x", "-y", " z") starting at `start` on both sides. */
function hunk(start: number, lines: string[]): string {
  const old = lines.filter((l) => !l.startsWith("+")).length;
  const neu = lines.filter((l) => !l.startsWith("-")).length;
  return `@@ -${start},${old} +${start},${neu} @@ fn()\n${lines.join("\n")}\n`;
}

function file(path: string, hunks: string[]): string {
  return `diff --git a/${path} b/${path}\nindex 1111111..2222222 100644\n--- a/${path}\n` +
    `+++ b/${path}\n${hunks.join("")}`;
}

/** A hunk adding `n` lines of about `width` characters each. */
function added(start: number, n: number, width = 40): string {
  return hunk(
    start,
    Array.from({ length: n }, (_, i) => `+${`line ${start + i} `.padEnd(width, "x")}`),
  );
}

/** Added lines per path, read from every chunk's diff in order. */
function addedByPath(diffs: string[]): Map<string, AddedLine[]> {
  const out = new Map<string, AddedLine[]>();
  for (const diff of diffs) {
    for (const f of splitDiff(diff)) {
      out.set(f.path, [...out.get(f.path) ?? [], ...addedLines(f.text)]);
    }
  }
  return out;
}

function assertFits(chunks: DiffChunk[], max: number) {
  chunks.forEach((chunk, i) => {
    const bytes = promptBytes(buildMessages(input, chunk, i + 1, chunks.length, max));
    assert.ok(bytes <= max, `chunk ${i + 1} of ${chunks.length}: ${bytes} > ${max}`);
  });
}

Deno.test("a small diff is one chunk; the prompt carries title, body, instructions and diff", () => {
  const diff = file("a.ts", [added(1, 3)]);
  const chunks = chunkDiff(input, diff, 64 * 1024);
  assert.deepEqual(chunks, [{ diff, files: ["a.ts"], splitFiles: [] }]);
  const [system, user] = buildMessages(input, chunks[0], 1, 1, 64 * 1024);
  assert.equal(system.content, SYSTEM_PROMPT);
  assert.match(system.content, /ONLY with JSON Lines/);
  for (const word of ["severity", "file_path", "line_number", "title", "description", "summary"]) {
    assert.ok(system.content.includes(`"${word}"`), word);
  }
  assert.match(user.content, /^Pull request: Add login\n\nDescription:\nCloses #3\n\n/);
  assert.match(user.content, /Instructions from the reviewer:\nCheck auth/);
  assert.ok(user.content.endsWith(`Diff:\n${diff}`));
  assert.doesNotMatch(user.content, /part \d+ of/);
});

Deno.test("an empty diff gives no chunks", () => {
  assert.deepEqual(chunkDiff(input, "", 4096), []);
  assert.deepEqual(chunkDiff(input, "\n", 4096), []);
});

Deno.test("a larger diff is cut on file boundaries, in order, every chunk under the bound", () => {
  const files = ["a.ts", "b.ts", "c.ts", "d.ts", "e.ts"].map((p) => file(p, [added(1, 30)]));
  const diff = files.join("");
  const max = 6 * 1024;
  const chunks = chunkDiff(input, diff, max);
  assert.ok(chunks.length > 1, `${chunks.length} chunks`);
  assertFits(chunks, max);
  assert.equal(chunks.map((c) => c.diff).join(""), diff);
  assert.deepEqual(chunks.flatMap((c) => c.files), ["a.ts", "b.ts", "c.ts", "d.ts", "e.ts"]);
  for (const chunk of chunks) {
    assert.deepEqual(chunk.splitFiles, []);
    assert.ok(files.some((f) => chunk.diff.startsWith(f)), "starts on a file boundary");
  }
  const user = buildMessages(input, chunks[1], 2, chunks.length, max)[1].content;
  assert.match(user, new RegExp(`This is part 2 of ${chunks.length} of the diff`));
});

Deno.test("a file larger than a chunk is cut at hunks, its header in every piece", () => {
  const big = file("big.ts", [added(1, 25), added(100, 25), added(200, 25), added(300, 25)]);
  const diff = file("a.ts", [added(1, 2)]) + big + file("z.ts", [added(1, 2)]);
  const max = 5 * 1024;
  const chunks = chunkDiff(input, diff, max);
  assertFits(chunks, max);
  const bigChunks = chunks.filter((c) => c.files.includes("big.ts"));
  assert.ok(bigChunks.length > 1);
  for (const chunk of bigChunks) {
    assert.deepEqual(chunk.splitFiles, ["big.ts"]);
    assert.match(chunk.diff, /diff --git a\/big\.ts b\/big\.ts\nindex 1111111\.\.2222222 100644\n/);
    // Whole hunks only: every piece's hunks are hunks of the original.
    for (
      const h of splitDiff(chunk.diff).find((f) => f.path === "big.ts")!.text.split(/^(?=@@)/m)
    ) {
      if (h.startsWith("@@")) assert.ok(big.includes(h), "an original hunk");
    }
  }
  const user = buildMessages(input, bigChunks[0], 1, 3, max)[1].content;
  assert.match(user, /Files split across parts \(only some of their hunks are here\): big\.ts/);
  assert.deepEqual(
    chunks.flatMap((c) => c.files).filter((f, i, a) => f !== a[i - 1]),
    ["a.ts", "big.ts", "z.ts"],
  );
  assert.deepEqual(addedByPath(chunks.map((c) => c.diff)), addedByPath([diff]));
});

Deno.test("a hunk larger than a chunk is cut at lines, each piece numbered as the original", () => {
  const lines = Array.from(
    { length: 600 },
    (_, i) =>
      i % 3 === 0 ? `-old ${i}` : i % 3 === 1 ? `+new ${i} ${"y".repeat(30)}` : ` same ${i}`,
  );
  const diff = file("huge.ts", [hunk(50, lines)]);
  const max = 6 * 1024;
  const chunks = chunkDiff(input, diff, max);
  assert.ok(chunks.length > 2, `${chunks.length} chunks`);
  assertFits(chunks, max);
  assert.deepEqual(addedByPath(chunks.map((c) => c.diff)), addedByPath([diff]));
  for (const chunk of chunks) {
    const header = chunk.diff.match(/^@@ -(\d+),(\d+) \+(\d+),(\d+) @@ fn\(\)$/m);
    assert.ok(header, "each piece has a hunk header");
    const body = chunk.diff.slice(chunk.diff.indexOf("\n", header.index) + 1).split("\n");
    body.pop();
    assert.equal(Number(header[2]), body.filter((l) => !l.startsWith("+")).length, "old count");
    assert.equal(Number(header[4]), body.filter((l) => !l.startsWith("-")).length, "new count");
  }
  // The body lines, in order, are the original's.
  const bodies = chunks.map((c) => c.diff.split(/^@@.*\n/m)[1]).join("");
  assert.equal(bodies, lines.join("\n") + "\n");
});

Deno.test("a line longer than a chunk is cut short so the request still fits", () => {
  const diff = file("min.js", [hunk(1, [`+${"é".repeat(20_000)}`, "+next"])]);
  const max = 8 * 1024;
  const chunks = chunkDiff(input, diff, max);
  assertFits(chunks, max);
  const added = addedByPath(chunks.map((c) => c.diff)).get("min.js")!;
  assert.deepEqual(added.map((a) => a.line), [1, 2]);
  assert.ok(added[0].text.endsWith("…"));
  assert.equal(added[1].text, "next");
});

Deno.test("a bound that leaves no room for the diff is a final error", () => {
  const diff = file("a.ts", [added(1, 100)]);
  assert.throws(() => chunkDiff(input, diff, 3000), (e: unknown) => {
    assert.ok(e instanceof ReviewError);
    assert.equal(e.retryable, false);
    assert.match(e.message, /maxInputBytes 3000 leaves/);
    return true;
  });
});

Deno.test("a long description and instructions are cut to a share of the bound", () => {
  const long = { title: "t", body: "b".repeat(100_000), instructions: "i".repeat(100_000) };
  const diff = file("a.ts", [added(1, 200)]);
  const chunks = chunkDiff(long, diff, 32 * 1024);
  for (const [i, chunk] of chunks.entries()) {
    const bytes = promptBytes(buildMessages(long, chunk, i + 1, chunks.length, 32 * 1024));
    assert.ok(bytes <= 32 * 1024, `${bytes}`);
  }
  const user = buildMessages(long, chunks[0], 1, chunks.length, 32 * 1024)[1].content;
  assert.ok(user.includes("b".repeat(4000)) && !user.includes("b".repeat(4097)));
  assert.ok(user.includes("i".repeat(8000)) && !user.includes("i".repeat(8193)));
});

Deno.test("property: any diff and bound give fitting chunks that keep every added line", () => {
  const line = fc.tuple(fc.constantFrom("+", "-", " "), fc.string({ maxLength: 120 }))
    .map(([mark, text]) => mark + text.replace(/[\r\n]/g, ""));
  const fileArb = fc.tuple(
    fc.stringMatching(/^[a-z]{1,12}\.ts$/),
    fc.array(fc.array(line, { minLength: 1, maxLength: 80 }), { minLength: 1, maxLength: 4 }),
  ).map(([path, hunks]) => file(path, hunks.map((h, i) => hunk(1 + i * 1000, h))));
  fc.assert(
    fc.property(
      fc.array(fileArb, { minLength: 1, maxLength: 6 }),
      fc.integer({ min: 4, max: 24 }),
      (
        files,
        kib,
      ) => {
        const diff = files.join("");
        const max = kib * 1024;
        const chunks = chunkDiff(input, diff, max);
        assertFits(chunks, max);
        assert.deepEqual(addedByPath(chunks.map((c) => c.diff)), addedByPath([diff]));
      },
    ),
    { numRuns: 200 },
  );
});
