import type { RunContext } from '../util/context.js';

/** What apps call while scanning; a no-op unless stderr is a TTY. */
export interface Progress {
  /** the expected total (the previous generation's bytes), for percentage and ETA */
  setTotal(bytes: number): void;
  update(entries: number, bytes: number): void;
  stop(): void;
}

const NOOP: Progress = { setTotal: () => undefined, update: () => undefined, stop: () => undefined };

function fmtBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} kB`;
  return `${n} B`;
}

/**
 * A progress bar on stderr (cli-progress: maintained, handles redraw and terminal width)
 * showing entries, bytes, rate and ETA. ETA needs an expected total: the previous
 * generation's byte count, when there is one.
 */
export async function createProgress(ctx: RunContext, label: string, expectedBytes: number | null): Promise<Progress> {
  if (!ctx.interactive || ctx.env.INTEG_NO_PROGRESS) return NOOP;
  const { default: cliProgress } = await import('cli-progress');
  const start = Date.now();
  let total = expectedBytes && expectedBytes > 0 ? expectedBytes : 0;
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: true,
      fps: 8,
      format: (_opts, params, payload: { entries: number; bytes: number }) => {
        const secs = (Date.now() - start) / 1000;
        const rate = secs > 0 ? payload.bytes / secs : 0;
        const pct = total ? Math.min(100, (payload.bytes / total) * 100) : null;
        const eta = total && rate > 0 ? Math.max(0, (total - payload.bytes) / rate) : null;
        const width = 24;
        const filled = pct === null ? 0 : Math.round((pct / 100) * width);
        const barStr = pct === null ? '' : `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct.toFixed(0)}% `;
        void params;
        return `${label} ${barStr}${payload.entries} entries, ${fmtBytes(payload.bytes)}, ${fmtBytes(rate)}/s${eta === null ? '' : `, ETA ${Math.ceil(eta)}s`}`;
      },
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total || 1, 0, { entries: 0, bytes: 0 });
  return {
    setTotal: (bytes) => {
      total = bytes > 0 ? bytes : 0;
      bar.setTotal(total || 1);
    },
    update: (entries, bytes) => bar.update(Math.min(bytes, total || 1), { entries, bytes }),
    stop: () => bar.stop(),
  };
}
