/**
 * JSON request bodies, read the same way by every JSON route.
 *
 * @module
 */

/** Nesting a body may have: the schemas go four levels deep; deeper input is refused. */
const MAX_JSON_DEPTH = 32;

/** How deeply `value` nests (iterative: a hostile body must not exhaust the stack). */
function depthOf(value: unknown): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    deepest = Math.max(deepest, depth);
    if (deepest > MAX_JSON_DEPTH) return deepest;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return deepest;
}

/**
 * Reads a request's JSON body (an empty body is `{}`), refusing invalid JSON and bodies nested
 * deeper than 32 levels. Bound the body's size before calling it (`bodyLimit`).
 *
 * @example
 * ```ts
 * const json = await readJson(c.req.raw);
 * if (!json.ok) return c.json({ error: json.error }, 400);
 * ```
 */
export async function readJson(
  req: Request,
): Promise<{ ok: true; value: unknown } | { ok: false; error: string }> {
  const text = await req.text();
  if (text.trim() === "") return { ok: true, value: {} };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, error: "body is not valid JSON" };
  }
  if (depthOf(value) > MAX_JSON_DEPTH) {
    return { ok: false, error: `body nests deeper than ${MAX_JSON_DEPTH} levels` };
  }
  return { ok: true, value };
}
