/**
 * Reading unified diffs (GitHub's `application/vnd.github.diff`): the files a diff touches, one
 * section per file, the lines a section adds with their line numbers in the new file, and cutting
 * a diff to a byte bound.
 *
 * @module
 */

/**
 * One file's section of a unified diff, from its `diff --git` line to the next one.
 *
 * @example
 * ```ts
 * const [file] = splitDiff("diff --git a/x.ts b/x.ts\n@@ -0,0 +1 @@\n+a\n");
 * file.path; // "x.ts"
 * ```
 */
export interface DiffFile {
  /** The `b/` path (the file's path after the change). */
  path: string;
  /** The section's text, `diff --git` line included, ending with a newline. */
  text: string;
  /** Git reported a binary change (`Binary files … differ` or a `GIT binary patch`). */
  binary: boolean;
  /** The file is deleted by the change. */
  deleted: boolean;
}

/**
 * A line the change adds, numbered as in the new file (the RIGHT side of the diff).
 *
 * @example
 * ```ts
 * const line: AddedLine = { line: 12, text: "eval(input)" };
 * ```
 */
export interface AddedLine {
  line: number;
  text: string;
}

/**
 * Splits a unified diff into one section per file, in order. Text before the first `diff --git`
 * line is dropped.
 *
 * @example
 * ```ts
 * splitDiff("diff --git a/a b/a\n+x\ndiff --git a/b b/b\n+y\n").map((f) => f.path); // ["a", "b"]
 * ```
 */
export function splitDiff(diff: string): DiffFile[] {
  const files: DiffFile[] = [];
  const starts = [...diff.matchAll(/^diff --git (.+?)\r?$/gm)];
  starts.forEach((match, i) => {
    const end = i + 1 < starts.length ? starts[i + 1].index! : diff.length;
    let text = diff.slice(match.index!, end);
    if (!text.endsWith("\n")) text += "\n";
    const firstHunk = text.search(/^@@ /m);
    const header = firstHunk < 0 ? text : text.slice(0, firstHunk);
    files.push({
      path: bPath(match[1]) ?? match[1],
      text,
      binary: /^(Binary files .* differ|GIT binary patch)\r?$/m.test(header),
      deleted: /^deleted file mode /m.test(header),
    });
  });
  return files;
}

/**
 * The lines a file's section adds, with their numbers in the new file, read from the hunk
 * headers (`@@ -a,b +c,d @@`). `\ No newline at end of file` markers are skipped.
 *
 * @example
 * ```ts
 * addedLines("@@ -1,2 +1,3 @@\n a\n+b\n c\n"); // [{ line: 2, text: "b" }]
 * ```
 */
export function addedLines(section: string): AddedLine[] {
  const out: AddedLine[] = [];
  let next = 0;
  let inHunk = false;
  for (const raw of section.split("\n")) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    const hunk = line.match(/^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@/);
    if (hunk) {
      next = Number(hunk[1]);
      inHunk = true;
      continue;
    }
    if (!inHunk) continue;
    if (line.startsWith("diff --git ")) inHunk = false;
    else if (line.startsWith("+")) out.push({ line: next++, text: line.slice(1) });
    else if (line.startsWith(" ") || line === "") next++;
    // "-" lines are not in the new file; "\" marks "No newline at end of file".
  }
  return out;
}

/**
 * The paths a unified diff touches (the `b/` side of each `diff --git a/X b/Y` line), in order,
 * without repeats.
 *
 * @example
 * ```ts
 * filesFromDiff("diff --git a/old.ts b/new.ts\n+x\ndiff --git a/y.ts b/y.ts\n"); // ["new.ts", "y.ts"]
 * ```
 */
export function filesFromDiff(diff: string): string[] {
  const files = new Set<string>();
  for (const match of diff.matchAll(/^diff --git (.+?)\r?$/gm)) {
    const path = bPath(match[1]);
    if (path) files.add(path);
  }
  return [...files];
}

/** The `b/` path of `a/X b/Y` (Git quotes paths with unusual characters: `"a/x y" "b/x y"`). */
function bPath(rest: string): string | undefined {
  const quoted = rest.match(/ "b\/((?:[^"\\]|\\.)*)"$/);
  if (quoted) return unquote(quoted[1]);
  // Unchanged paths: "a/P b/P" splits in the middle, even when P contains " b/".
  const half = (rest.length - 1) / 2;
  if (
    Number.isInteger(half) && rest.startsWith("a/") && rest[half] === " " &&
    rest.slice(2, half) === rest.slice(half + 3) && rest.slice(half + 1, half + 3) === "b/"
  ) return rest.slice(half + 3);
  return rest.match(/^(?:a\/.*?|"a\/(?:[^"\\]|\\.)*") b\/(.+)$/)?.[1];
}

function unquote(text: string): string {
  // Git's C-style quoting (quote_c_style): \a \b \t \n \v \f \r \" \\ and octal bytes.
  const simple: Record<string, string> = {
    a: "\x07",
    b: "\b",
    t: "\t",
    n: "\n",
    v: "\v",
    f: "\f",
    r: "\r",
    '"': '"',
    "\\": "\\",
  };
  const bytes: number[] = [];
  const encoder = new TextEncoder();
  for (let i = 0; i < text.length; i++) {
    const octal = text[i] === "\\" ? text.slice(i + 1, i + 4).match(/^[0-7]{3}$/) : null;
    if (octal) {
      bytes.push(parseInt(octal[0], 8));
      i += 3;
    } else if (text[i] === "\\" && i + 1 < text.length) {
      bytes.push(...encoder.encode(simple[text[i + 1]] ?? text[i + 1]));
      i++;
    } else {
      bytes.push(...encoder.encode(text[i]));
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/**
 * Cuts a diff to at most `maxBytes` of UTF-8 at a line boundary (never inside a line or a
 * character).
 *
 * @example
 * ```ts
 * truncateDiff("a\nb\n", 2); // { diff: "a\n", truncated: true }
 * truncateDiff("a\nb\n", 10); // { diff: "a\nb\n", truncated: false }
 * ```
 */
export function truncateDiff(diff: string, maxBytes: number): { diff: string; truncated: boolean } {
  const bytes = new TextEncoder().encode(diff);
  if (bytes.length <= Math.max(0, maxBytes)) return { diff, truncated: false };
  const head = bytes.subarray(0, Math.max(0, maxBytes));
  return {
    diff: new TextDecoder().decode(head.subarray(0, head.lastIndexOf(0x0a) + 1)),
    truncated: true,
  };
}
