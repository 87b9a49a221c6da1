/**
 * A TCP listener that accepts connections and never answers: the GitHub and agent that keep
 * every review waiting, so the ingest benchmark measures only ingest.
 *
 * @module
 */

/** A listener that never answers. */
export interface SilentServer {
  url: string;
  close(): void;
}

/**
 * Starts a listener on loopback that reads nothing and answers nothing.
 *
 * @example
 * ```ts
 * const github = startSilentServer();
 * // … GITHUB_API_URL: github.url …
 * github.close();
 * ```
 */
export function startSilentServer(): SilentServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  (async () => {
    try {
      for await (const conn of listener) held.push(conn);
    } catch {
      // Closed.
    }
  })();
  return {
    url: `http://127.0.0.1:${listener.addr.port}`,
    close() {
      listener.close();
      for (const conn of held) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
    },
  };
}
