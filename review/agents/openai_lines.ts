/**
 * Reading an OpenAI-compatible chat completion stream: the `data:` chunks, their content deltas
 * assembled into lines, and each line read as a finding, a summary, prose to ignore, or output
 * to count as skipped. Models add prose and code fences whatever the prompt says; this tolerates
 * both.
 *
 * @module
 */
import { type AgentFinding, AgentFindingSchema } from "../agent_events.ts";

/**
 * Longest line kept, in UTF-16 code units; longer ones are skipped, never buffered whole.
 *
 * @example
 * ```ts
 * const lines = createLineAssembler(MAX_LINE_CHARS);
 * ```
 */
export const MAX_LINE_CHARS = 64 * 1024;
/** Longest summary kept (the bound of the agent protocol's `summary` event). */
const MAX_SUMMARY_CHARS = 20_000;

/**
 * A completed line, or a line that grew past the bound (`overlong`: its length).
 *
 * @example
 * ```ts
 * const lines: AssembledLine[] = [{ text: "{}" }, { overlong: 70_000 }];
 * ```
 */
export type AssembledLine = { text: string } | { overlong: number };

/**
 * Joins content deltas into lines. A line may arrive one character per delta: fragments are
 * kept and joined once, at the newline.
 *
 * @example
 * ```ts
 * const lines = createLineAssembler();
 * lines.push('{"a"'); // []
 * lines.push(":1}\nx"); // [{ text: '{"a":1}' }]
 * lines.end(); // [{ text: "x" }]
 * ```
 */
export interface LineAssembler {
  /** Adds a delta; returns the lines it completed. */
  push(delta: string): AssembledLine[];
  /** Returns the last, unterminated line, if any. */
  end(): AssembledLine[];
}

/**
 * A {@link LineAssembler} that keeps at most `maxLineChars` of one line.
 *
 * @example
 * ```ts
 * createLineAssembler(4).push("12345\nok\n"); // [{ overlong: 5 }, { text: "ok" }]
 * ```
 */
export function createLineAssembler(maxLineChars = MAX_LINE_CHARS): LineAssembler {
  let fragments: string[] = [];
  let length = 0;
  let overlong = false;
  const append = (text: string) => {
    length += text.length;
    if (overlong) return;
    if (length > maxLineChars) {
      overlong = true;
      fragments = [];
    } else if (text) fragments.push(text);
  };
  const finish = (): AssembledLine => {
    const line = overlong ? { overlong: length } : { text: fragments.join("") };
    fragments = [];
    length = 0;
    overlong = false;
    return line;
  };
  return {
    push(delta) {
      const lines: AssembledLine[] = [];
      let start = 0;
      for (let at = delta.indexOf("\n"); at >= 0; at = delta.indexOf("\n", start)) {
        append(delta.slice(start, at));
        lines.push(finish());
        start = at + 1;
      }
      append(start ? delta.slice(start) : delta);
      return lines;
    },
    end() {
      return length || overlong ? [finish()] : [];
    },
  };
}

/**
 * What one line of the model's answer is.
 *
 * @example
 * ```ts
 * const result: LineResult = { type: "skipped", reason: "line is not valid JSON" };
 * ```
 */
export type LineResult =
  | { type: "finding"; finding: AgentFinding }
  | { type: "summary"; text: string }
  | { type: "skipped"; reason: string }
  /** Prose, a code fence, an empty line. */
  | { type: "ignored" };

/**
 * Reads one line: the JSON object from its first `{` to its last `}` (so a fence or prose around
 * it does no harm). Before validating, `file`/`path` stand for `file_path`, `line` for
 * `line_number` (a digit string counts; absent means `null`), the severity is lowercased, a
 * `null` suggestion is dropped and `agent_type` defaults to `agentType`. A severity other than
 * critical, warning or info fails validation: guessing what "error" or "high" meant would put
 * words in the model's mouth.
 *
 * @example
 * ```ts
 * parseFindingLine("```json"); // { type: "ignored" }
 * parseFindingLine('{"summary": "ok"}'); // { type: "summary", text: "ok" }
 * parseFindingLine('{"severity": "warning"'); // { type: "skipped", reason: "…" }
 * ```
 */
export function parseFindingLine(line: string, agentType = "openai"): LineResult {
  const start = line.indexOf("{");
  if (start < 0) return { type: "ignored" };
  const end = line.lastIndexOf("}");
  if (end < start) return { type: "skipped", reason: "line has an unterminated JSON object" };
  let value: unknown;
  try {
    value = JSON.parse(line.slice(start, end + 1));
  } catch (error) {
    return { type: "skipped", reason: `line is not valid JSON: ${(error as Error).message}` };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { type: "skipped", reason: "line is not a JSON object" };
  }
  const o = value as Record<string, unknown>;
  if (typeof o.summary === "string" && o.title === undefined && o.severity === undefined) {
    return { type: "summary", text: o.summary.slice(0, MAX_SUMMARY_CHARS) };
  }
  const lineNumber = o.line_number ?? o.line ?? null;
  const candidate: Record<string, unknown> = {
    ...o,
    severity: typeof o.severity === "string" ? o.severity.trim().toLowerCase() : o.severity,
    file_path: o.file_path ?? o.file ?? o.path,
    line_number: typeof lineNumber === "string" && /^\d+$/.test(lineNumber)
      ? Number(lineNumber)
      : lineNumber,
    agent_type: o.agent_type ?? agentType,
  };
  // Models write `"suggestion": null` for "none"; an absent key is what the schema means.
  if (candidate.suggestion === null || candidate.suggestion === undefined) {
    delete candidate.suggestion;
  }
  const parsed = AgentFindingSchema.safeParse(candidate);
  if (parsed.success) return { type: "finding", finding: parsed.data };
  const issue = parsed.error.issues[0];
  return {
    type: "skipped",
    reason: `finding does not validate: ${issue.path.join(".") || "value"}: ${issue.message}`,
  };
}

/**
 * One `data:` payload of the stream.
 *
 * @example
 * ```ts
 * const chunk: StreamChunk = { type: "delta", content: "{", model: "gpt-4o-mini" };
 * ```
 */
export type StreamChunk =
  /** `[DONE]`: the answer is complete. */
  | { type: "done" }
  | {
    type: "delta";
    /** Text to append (empty for a usage-only or role-only chunk). */
    content: string;
    model?: string;
    usage?: { tokensIn: number; tokensOut: number };
    /** `stop`, or `length` when the token limit cut the answer. */
    finishReason?: string;
  }
  /** The server reported a failure inside the stream. */
  | { type: "error"; message: string; retryable: boolean; rateLimited: boolean }
  /** Not JSON, or not an object. */
  | { type: "invalid"; reason: string };

/**
 * Reads one `data:` payload: `[DONE]`, an `{error}` object, or a completion chunk whose first
 * choice's `delta.content` is the text (other fields such as `reasoning_content` are not part of
 * the answer).
 *
 * @example
 * ```ts
 * parseCompletionChunk('{"choices":[{"delta":{"content":"hi"}}]}'); // { type: "delta", content: "hi" }
 * parseCompletionChunk("[DONE]"); // { type: "done" }
 * ```
 */
export function parseCompletionChunk(data: string): StreamChunk {
  if (data.trim() === "[DONE]") return { type: "done" };
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return { type: "invalid", reason: "stream chunk is not JSON" };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { type: "invalid", reason: "stream chunk is not a JSON object" };
  }
  const o = value as Record<string, unknown>;
  if (o.error !== undefined && o.error !== null) return streamError(o.error);
  const choice = Array.isArray(o.choices) ? o.choices[0] as Record<string, unknown> : undefined;
  const delta = choice?.delta as Record<string, unknown> | undefined;
  const usage = o.usage as Record<string, unknown> | undefined | null;
  const tokensIn = usage?.prompt_tokens, tokensOut = usage?.completion_tokens;
  return {
    type: "delta",
    content: typeof delta?.content === "string" ? delta.content : "",
    ...(typeof o.model === "string" ? { model: o.model } : {}),
    ...(typeof tokensIn === "number" && typeof tokensOut === "number"
      ? { usage: { tokensIn, tokensOut } }
      : {}),
    ...(typeof choice?.finish_reason === "string" ? { finishReason: choice.finish_reason } : {}),
  };
}

/** `{"error": …}` inside the stream: final when it says the request itself is wrong. */
function streamError(error: unknown): StreamChunk {
  const e = (typeof error === "object" ? error : { message: error }) as Record<string, unknown>;
  const message = typeof e.message === "string"
    ? e.message.slice(0, 1000)
    : JSON.stringify(error).slice(0, 1000);
  const kind = `${e.type ?? ""} ${e.code ?? ""}`.toLowerCase();
  const code = typeof e.code === "number" ? e.code : Number(e.code);
  const rateLimited = code === 429 || kind.includes("rate_limit");
  const final = e.retryable === false || (code >= 400 && code < 500 && !rateLimited) ||
    /invalid_request|authentication|permission|not_found|context_length/.test(kind);
  return { type: "error", message, retryable: !final, rateLimited };
}
