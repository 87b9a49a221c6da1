/** Percentiles for benchmark reports. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** `p50 … ms, p99 … ms` for a list of milliseconds. */
export function describe(values: number[]): string {
  const f = (n: number) => n.toFixed(1);
  return `p50 ${f(percentile(values, 50))} ms, p99 ${
    f(percentile(values, 99))
  } ms, n=${values.length}`;
}
