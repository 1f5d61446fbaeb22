/** Plain-text tables for the terminal: left-aligned first column (and `leftCols`), right-aligned numbers. */
export function renderTable(header: string[], rows: string[][], leftCols: number[] = []): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === 0 || leftCols.includes(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join(' | ')
      .trimEnd();
  const sep = widths.map((w) => '-'.repeat(w)).join('-|-');
  return [line(header), sep, ...rows.map(line)].join('\n');
}

export const fmt = {
  s: (v: number | null | undefined): string => (v === null || v === undefined ? '-' : v < 10 ? v.toFixed(2) : v.toFixed(1)),
  int: (v: number | null | undefined): string => (v === null || v === undefined ? '-' : Math.round(v).toLocaleString('en-US')),
  num: (v: number | null | undefined, digits = 0): string => (v === null || v === undefined ? '-' : v.toFixed(digits)),
  ratio: (v: number | null | undefined): string => (v === null || v === undefined ? '-' : `${v.toFixed(2)}x`),
};
