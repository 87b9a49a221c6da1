/**
 * What a benchmark section returns and how `bench/run.ts` prints it: a readable table, then one
 * JSON object with every figure as the last line.
 *
 * @module
 */

/** Options every section takes. */
export interface BenchOptions {
  /** A tiny run (about 50 reviews) that only shows the scripts still work (CI). */
  quick: boolean;
  /** Progress lines for the reader (stderr); the table and JSON go to stdout. */
  log: (line: string) => void;
}

/** One line of the table. */
export interface Row {
  /** The JSON figure name, e.g. `ingest_rps`. */
  figure: string;
  /** The measured value, formatted with its unit. */
  value: string;
  /** The floor it is set against and the floor's spread across rounds, if any. */
  floor?: string;
  /** The target, e.g. `≥ 0.8`. */
  target?: string;
  /** Whether the target holds (`undefined`: no target). */
  ok?: boolean;
}

/** A section's result: figures for the JSON line, rows for the table. */
export interface SectionResult {
  figures: Record<string, number>;
  rows: Row[];
}

/**
 * The table, aligned, one row per figure.
 *
 * @example
 * ```ts
 * console.log(renderTable([{ figure: "ingest_rps", value: "1200/s" }]));
 * ```
 */
export function renderTable(rows: Row[]): string {
  const head = ["figure", "value", "floor (spread)", "target", "ok"];
  const cells = rows.map((r) => [
    r.figure,
    r.value,
    r.floor ?? "",
    r.target ?? "",
    r.ok === undefined ? "" : r.ok ? "yes" : "NO",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((s, i) => s.padEnd(widths[i])).join("  ").trimEnd();
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)].join("\n");
}

/** A number rounded for the JSON line (3 significant decimals at most). */
export function round(n: number): number {
  return Number.isFinite(n) ? Math.round(n * 1000) / 1000 : n;
}
