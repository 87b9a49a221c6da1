/**
 * The `openai` agent's prompt: the system message asking for one JSON finding per line, the user
 * message with the pull request and its diff, and cutting a diff too large for one request into
 * parts that each fit the input bound (by file, then by hunk, then by line).
 *
 * @module
 */
import { splitDiff } from "../diff.ts";
import { ReviewError } from "../errors.ts";
import { truncateUtf8 } from "../text.ts";

/**
 * A chat message as `POST /chat/completions` takes it.
 *
 * @example
 * ```ts
 * const message: ChatMessage = { role: "system", content: SYSTEM_PROMPT };
 * ```
 */
export interface ChatMessage {
  role: "system" | "user";
  content: string;
}

/**
 * What the prompt says about the pull request besides the diff.
 *
 * @example
 * ```ts
 * const input: PromptInput = { title: "Fix login", body: "Closes #3", instructions: "Be brief" };
 * ```
 */
export interface PromptInput {
  title: string;
  body?: string;
  instructions?: string;
}

/**
 * One request's share of the diff.
 *
 * @example
 * ```ts
 * const chunk: DiffChunk = { diff: "diff --git a/x b/x\n", files: ["x"], splitFiles: [] };
 * ```
 */
export interface DiffChunk {
  /** Diff text: whole file sections, or a file's header with some of its hunks. */
  diff: string;
  /** Paths in the chunk, in diff order, without repeats. */
  files: string[];
  /** Paths of which this chunk holds only some hunks. */
  splitFiles: string[];
}

/**
 * The system message: the answer format the line parser reads.
 *
 * @example
 * ```ts
 * const messages = [{ role: "system", content: SYSTEM_PROMPT }];
 * ```
 */
export const SYSTEM_PROMPT = [
  "You are a code reviewer. Review the pull request diff you are given and report real problems",
  "in the changed code: bugs, security issues, data loss, races, wrong error handling, and clear",
  "maintainability problems. Do not praise the change and do not restate it.",
  "",
  "Answer ONLY with JSON Lines: one JSON object per line and no other text (no prose, no Markdown,",
  "no code fences). Each line is one finding with these fields:",
  '{"severity": "critical" | "warning" | "info", "file_path": "<path as in the diff>", ' +
  '"line_number": <line in the new file, or null>, "title": "<short title>", ' +
  '"description": "<what is wrong and why>", "suggestion": "<optional>"}',
  "line_number counts lines of the new file (the + side of the @@ hunk headers); use null when",
  "the finding is not about one added or changed line. Give a suggestion only for a concrete fix,",
  "and then only the replacement code for that line or lines.",
  'Optionally end with one line {"summary": "<one paragraph about the change>"}.',
  "If you find nothing, answer with the summary line alone.",
].join("\n");

const encoder = new TextEncoder();
const bytes = (text: string) => encoder.encode(text).byteLength;
/** Below this much room for diff text per request, chunking would only produce noise. */
const MIN_DIFF_BUDGET = 2048;
/** Room kept for a hunk header written for a cut hunk (`@@ -o,n +o,n @@`, ten-digit numbers). */
const HUNK_HEADER_ROOM = 64;

/**
 * UTF-8 size of the messages' text: what `maxInputBytes` bounds.
 *
 * @example
 * ```ts
 * promptBytes([{ role: "user", content: "é" }]); // 2
 * ```
 */
export function promptBytes(messages: ChatMessage[]): number {
  return messages.reduce((sum, m) => sum + bytes(m.content), 0);
}

/**
 * The messages for one chunk; `part`/`total` say where it sits when the diff is cut (`total` 1:
 * no note). The description and instructions are cut to a share of `maxInputBytes`.
 *
 * @example
 * ```ts
 * const messages = buildMessages({ title: "Fix" }, chunk, 2, 5, 64 * 1024);
 * messages[1].content.includes("part 2 of 5"); // true
 * ```
 */
export function buildMessages(
  input: PromptInput,
  chunk: DiffChunk,
  part: number,
  total: number,
  maxInputBytes: number,
): ChatMessage[] {
  // A long description or instruction must not crowd the diff out of every request.
  const share = (n: number) => Math.min(16 * 1024, Math.floor(maxInputBytes / n));
  const sections = [`Pull request: ${truncateUtf8(input.title, 1024)}`];
  if (input.body?.trim()) sections.push(`Description:\n${truncateUtf8(input.body, share(8))}`);
  if (input.instructions?.trim()) {
    sections.push(`Instructions from the reviewer:\n${truncateUtf8(input.instructions, share(4))}`);
  }
  if (total > 1) {
    let note = `This is part ${part} of ${total} of the diff; the other parts are reviewed ` +
      "separately, so comment only on what this part shows.";
    if (chunk.splitFiles.length) {
      note += ` Files split across parts (only some of their hunks are here): ` +
        chunk.splitFiles.join(", ");
    }
    sections.push(note);
  }
  sections.push(`Diff:\n${chunk.diff}`);
  return [
    { role: "system", content: SYSTEM_PROMPT },
    { role: "user", content: sections.join("\n\n") },
  ];
}

/** A file's section or a piece of one; `split` pieces are listed in the chunk's note. */
interface Piece {
  path: string;
  text: string;
  split: boolean;
}

/**
 * Cuts `diff` into chunks whose messages ({@link buildMessages}) each fit `maxInputBytes`: whole
 * files while they fit, a larger file by hunks (its header repeated in each piece), a larger hunk
 * by lines (each piece with its own `@@` header, numbered as in the original), and a line longer
 * than a request is cut short. Chunks keep diff order. An empty diff gives no chunks.
 *
 * @example
 * ```ts
 * const chunks = chunkDiff({ title: "Fix" }, diff, 32 * 1024);
 * chunks.map((c) => c.files); // [["a.ts", "b.ts"], ["c.ts"]]
 * ```
 */
export function chunkDiff(input: PromptInput, diff: string, maxInputBytes: number): DiffChunk[] {
  if (!diff.trim()) return [];
  const files = splitDiff(diff);
  const whole: DiffChunk = { diff, files: files.map((f) => f.path), splitFiles: [] };
  if (promptBytes(buildMessages(input, whole, 1, 1, maxInputBytes)) <= maxInputBytes) {
    return [whole];
  }
  // The note's numbers and fixed words at their largest; each split path then adds its own size.
  const empty: DiffChunk = { diff: "", files: [], splitFiles: [""] };
  const budget = maxInputBytes -
    promptBytes(buildMessages(input, empty, 999_999_999, 999_999_999, maxInputBytes));
  if (budget < MIN_DIFF_BUDGET) {
    throw new ReviewError(
      `maxInputBytes ${maxInputBytes} leaves ${budget} bytes for the diff; at least ` +
        `${MIN_DIFF_BUDGET} are needed`,
      { retryable: false, reason: "agent_error" },
    );
  }
  const sections = files.length ? files : [{ path: "(diff)", text: diff }];
  const pieces = sections.flatMap((f) => filePieces(f.path, f.text, budget));
  const chunks: DiffChunk[] = [];
  let current: Piece[] = [];
  let used = 0;
  const flush = () => {
    if (!current.length) return;
    chunks.push({
      diff: current.map((p) => p.text).join(""),
      files: [...new Set(current.map((p) => p.path))],
      splitFiles: [...new Set(current.filter((p) => p.split).map((p) => p.path))],
    });
    current = [];
    used = 0;
  };
  for (const piece of pieces) {
    const cost = pieceCost(piece);
    if (used + cost > budget) flush();
    current.push(piece);
    used += cost;
  }
  flush();
  return chunks;
}

function pieceCost(piece: Piece): number {
  return bytes(piece.text) + (piece.split ? bytes(piece.path) + 2 : 0);
}

/** One file's pieces, each costing at most `budget`. */
function filePieces(path: string, text: string, budget: number): Piece[] {
  if (bytes(text) <= budget) return [{ path, text, split: false }];
  const firstHunk = text.search(/^@@ /m);
  let header = firstHunk < 0 ? "" : text.slice(0, firstHunk);
  const hunks = firstHunk < 0 ? [text] : text.slice(firstHunk).split(/^(?=@@ )/m);
  // A header too large to repeat (a huge rename list?) gives way to the plain file line.
  if (bytes(header) > budget / 4) header = `diff --git a/${path} b/${path}\n`;
  const room = budget - bytes(header) - bytes(path) - 2;
  const pieces: Piece[] = [];
  let group = "";
  let groupBytes = 0;
  const flush = () => {
    if (group) pieces.push({ path, text: header + group, split: true });
    group = "";
    groupBytes = 0;
  };
  for (const hunk of hunks) {
    const size = bytes(hunk);
    if (size > room) {
      flush();
      for (const part of cutHunk(hunk, room)) {
        pieces.push({ path, text: header + part, split: true });
      }
    } else {
      if (groupBytes + size > room) flush();
      group += hunk;
      groupBytes += size;
    }
  }
  flush();
  return pieces;
}

/**
 * Cuts one hunk into pieces of at most `room` bytes at line boundaries. Each piece gets an `@@`
 * header counting its own lines, so new-file line numbers stay right in every piece.
 */
function cutHunk(hunk: string, room: number): string[] {
  const lines = hunk.split(/(?<=\n)/);
  const start = lines[0].match(/^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@(.*)/);
  let oldLine = start ? Number(start[1]) : 0;
  let newLine = start ? Number(start[2]) : 0;
  // The function name git puts after the header is dropped when it would crowd out the lines.
  let context = start ? start[3].replace(/\r?\n$/, "") : "";
  if (bytes(context) > room / 4) context = "";
  const body = start ? lines.slice(1) : lines;
  const headerRoom = start ? HUNK_HEADER_ROOM + bytes(context) : 0;
  const lineRoom = room - headerRoom;
  const parts: string[] = [];
  let piece: string[] = [];
  let used = 0;
  let pieceOld = oldLine, pieceNew = newLine, oldCount = 0, newCount = 0;
  const flush = () => {
    if (!piece.length) return;
    const head = start ? `@@ -${pieceOld},${oldCount} +${pieceNew},${newCount} @@${context}\n` : "";
    parts.push(head + piece.join(""));
    piece = [];
    used = 0;
    pieceOld = oldLine;
    pieceNew = newLine;
    oldCount = newCount = 0;
  };
  for (let line of body) {
    if (bytes(line) > lineRoom) line = truncateUtf8(line.replace(/\n$/, ""), lineRoom - 1) + "\n";
    if (used + bytes(line) > lineRoom) flush();
    piece.push(line);
    used += bytes(line);
    // "-" is old-side only, "+" new-side only, "\" (no newline at end) neither, context both.
    const mark = line[0];
    if (mark !== "+" && mark !== "\\") {
      oldLine++;
      oldCount++;
    }
    if (mark !== "-" && mark !== "\\") {
      newLine++;
      newCount++;
    }
  }
  flush();
  return parts;
}
