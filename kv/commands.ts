/**
 * `/review cancel` comments already carried out, so a redelivered one (GitHub redelivers for days)
 * does nothing: without this it would stop reviews started after it.
 *
 * @module
 */
import { keys } from "./keys.ts";

/** How long a carried-out command is remembered (GitHub redelivers within days). */
export const COMMAND_TTL_MS = 30 * 24 * 60 * 60_000;

/**
 * Whether the command of comment `commentId` was carried out.
 *
 * @example
 * ```ts
 * if (await commandDone(kv, 1234)) return { stopped: 0 };
 * ```
 */
export async function commandDone(kv: Deno.Kv, commentId: number): Promise<boolean> {
  return (await kv.get(keys.command(commentId))).value !== null;
}

/**
 * Records that the command of comment `commentId` was carried out (after it was: a crash in
 * between makes a redelivery carry it out again, which is the safe side).
 *
 * @example
 * ```ts
 * await markCommandDone(kv, 1234, Date.now());
 * ```
 */
export async function markCommandDone(kv: Deno.Kv, commentId: number, now: number) {
  await kv.set(keys.command(commentId), now, { expireIn: COMMAND_TTL_MS });
}
