/**
 * `deno task bench`: every performance figure of the service, each set against a floor measured
 * in the same run on the same machine. Progress goes to stderr; stdout gets a readable table and,
 * as its last line, one JSON object with every figure.
 *
 *   deno task bench            # the full run (under 3 minutes on 2 cores)
 *   deno task bench --quick    # about 50 reviews per section: shows the scripts still work
 *   deno task bench --only=ingest,drain
 *
 * @module
 */
import { measureDispatch } from "./dispatch.ts";
import { measureDrain } from "./drain.ts";
import { measureIngest } from "./ingest.ts";
import { measureIsolation } from "./isolation.ts";
import { measureMemory } from "./memory.ts";
import { type BenchOptions, renderTable, round, type Row, type SectionResult } from "./report.ts";

/** The sections in the order they run. */
export const SECTIONS: Record<string, (options: BenchOptions) => Promise<SectionResult>> = {
  ingest: measureIngest,
  dispatch: measureDispatch,
  drain: measureDrain,
  isolation: measureIsolation,
  memory: measureMemory,
};

/**
 * Runs the chosen sections one after the other and adds the figures that compare sections
 * (`drain_ratio`: drain against ingest).
 *
 * @example
 * ```ts
 * const { figures, rows } = await runBench(["ingest"], { quick: true, log: console.error });
 * ```
 */
export async function runBench(names: string[], options: BenchOptions): Promise<SectionResult> {
  const figures: Record<string, number> = {};
  const rows: Row[] = [];
  for (const name of names) {
    const started = performance.now();
    options.log(`— ${name}`);
    const result = await SECTIONS[name](options);
    Object.assign(figures, result.figures);
    rows.push(...result.rows);
    const seconds = (performance.now() - started) / 1000;
    figures[`${name}_seconds`] = round(seconds);
    options.log(`— ${name} done in ${seconds.toFixed(1)} s`);
  }
  if (figures.drain_rps !== undefined && figures.ingest_rps !== undefined) {
    const ratio = figures.drain_rps / figures.ingest_rps;
    figures.drain_ratio = round(ratio);
    rows.push({
      figure: "drain_ratio",
      value: `${ratio.toFixed(2)} (drain_rps ÷ ingest_rps)`,
      target: "≥ 0.5",
      ok: ratio >= 0.5,
    });
  }
  return { figures, rows };
}

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  const only = Deno.args.find((a) => a.startsWith("--only="))?.slice("--only=".length);
  const names = only ? only.split(",") : Object.keys(SECTIONS);
  const unknown = names.filter((n) => !(n in SECTIONS));
  if (unknown.length) {
    console.error(`unknown section ${unknown.join(", ")}; sections: ${Object.keys(SECTIONS)}`);
    Deno.exit(2);
  }
  const started = performance.now();
  const { figures, rows } = await runBench(names, { quick, log: (l) => console.error(l) });
  const seconds = (performance.now() - started) / 1000;
  const held = rows.filter((r) => r.ok === true).length;
  const missed = rows.filter((r) => r.ok === false).map((r) => r.figure);
  console.log(
    `${quick ? "quick " : ""}bench, ${
      new Date().toISOString()
    }, ${navigator.hardwareConcurrency} ` +
      `cores, Deno ${Deno.version.deno}, ${seconds.toFixed(0)} s`,
  );
  console.log(renderTable(rows));
  console.log(
    `targets: ${held} held, ${missed.length} missed${missed.length ? ` (${missed})` : ""}`,
  );
  console.log(JSON.stringify({
    date: new Date().toISOString(),
    quick,
    cores: navigator.hardwareConcurrency,
    deno: Deno.version.deno,
    seconds: round(seconds),
    targets_missed: missed.length,
    ...figures,
  }));
}
