import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { INTEG_BIN } from './lib/integ.js';
import { runMeasured, type Measured } from './lib/proc.js';
import type { BenchContext, Section, SectionResult, TargetResult } from './lib/section.js';
import { fmt, renderTable } from './lib/table.js';

/**
 * `npm run bench -- --only snapshot [--procs N] [--uac DIR]`: integ snapshot's wall time, the
 * time between its two /proc/net reads and steps 1–4, optionally with N extra idle processes
 * (a host with "a few hundred processes"), and UAC's live_response/process + network artifacts
 * for comparison when a UAC checkout is given.
 */

interface SnapshotJson {
  bundle: string;
  timings: { core_bracket_ms: number; steps_1_4_ms: number; total_ms: number };
}

function countProcesses(): number {
  return fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)).length;
}

function median(xs: number[]): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function spawnIdle(n: number): Promise<ChildProcess[]> {
  const kids: ChildProcess[] = [];
  for (let i = 0; i < n; i++) kids.push(spawn('sleep', ['600'], { stdio: 'ignore' }));
  await new Promise((r) => setTimeout(r, 300));
  return kids;
}

async function runUac(uacDir: string, ctx: BenchContext): Promise<Measured | null> {
  const uac = path.join(uacDir, 'uac');
  if (!fs.existsSync(uac)) {
    ctx.log(`snapshot: no ${uac}; UAC column skipped`);
    return null;
  }
  const out = path.join(ctx.work, 'snapshot', 'uac-out');
  fs.mkdirSync(out, { recursive: true });
  return runMeasured(uac, ['-a', 'live_response/process/*,live_response/network/*', out], {
    cwd: uacDir,
    scratch: path.join(ctx.work, 'snapshot'),
    label: 'uac',
  });
}

export const snapshotSection: Section = {
  name: 'snapshot',
  summary: 'integ snapshot wall time, /proc/net bracket, steps 1-4 (--procs N idle processes, --uac DIR to compare)',
  byDefault: () => false,
  async run(ctx: BenchContext): Promise<SectionResult> {
    const scratch = path.join(ctx.work, 'snapshot');
    const out = path.join(scratch, 'evidence');
    const extra = ctx.opts.procs ?? 0;
    const kids = extra > 0 ? await spawnIdle(extra) : [];
    const runs: Array<{ m: Measured; j: SnapshotJson | null }> = [];
    let processes = 0;
    try {
      processes = countProcesses();
      const repeat = Math.max(3, ctx.opts.repeat);
      for (let i = 0; i < repeat; i++) {
        ctx.log(`snapshot: run ${i + 1}/${repeat} with ${processes} processes`);
        const m = await runMeasured(process.execPath, [INTEG_BIN, 'snapshot', '--out', out, '--format', 'json'], { scratch, label: `snapshot-${i}` });
        let j: SnapshotJson | null = null;
        try {
          j = JSON.parse(fs.readFileSync(m.stdoutFile, 'utf8')) as SnapshotJson;
        } catch {
          /* reported as failed below */
        }
        runs.push({ m, j });
      }
    } finally {
      for (const k of kids) k.kill();
    }
    const uac = ctx.opts.uac ? await runUac(ctx.opts.uac, ctx) : null;
    const ok = runs.filter((r) => r.m.exitCode === 0 && r.j);
    const wall = median(ok.map((r) => r.m.wallS));
    const bracket = median(ok.map((r) => r.j!.timings.core_bracket_ms));
    const s14 = median(ok.map((r) => r.j!.timings.steps_1_4_ms));
    const total = median(ok.map((r) => r.j!.timings.total_ms));
    const rows = [['integ snapshot', fmt.s(wall), fmt.num(total), fmt.num(s14), fmt.num(bracket, 1), fmt.num(median(ok.map((r) => r.m.peakRssMiB ?? 0)))]];
    if (uac) rows.push(['UAC process+network', fmt.s(uac.wallS), '-', '-', '-', fmt.num(uac.peakRssMiB)]);
    const targets: TargetResult[] = [
      {
        target: 'bracketed core: /proc/net reads ≤ 100 ms apart',
        measured: `${fmt.num(bracket, 1)} ms`,
        status: bracket === null ? 'n/a' : bracket <= 100 ? 'pass' : 'fail',
      },
      { target: 'steps 1-4 ≤ 1 s', measured: `${fmt.num(s14)} ms`, status: s14 === null ? 'n/a' : s14 <= 1000 ? 'pass' : 'fail' },
      { target: 'whole snapshot ≤ 3 s wall (all steps, sealed)', measured: `${fmt.s(wall)} s`, status: wall === null ? 'n/a' : wall <= 3 ? 'pass' : 'fail' },
      {
        target: '≥ 10x faster than UAC',
        measured: uac && wall ? `${(uac.wallS / wall).toFixed(1)}x` : 'UAC not given (--uac DIR)',
        status: uac && wall ? (uac.wallS / wall >= 10 ? 'pass' : 'fail') : 'n/a',
      },
    ];
    return {
      name: 'snapshot',
      title: `Snapshot: ${processes} processes (${extra} idle ones added), median of ${runs.length} runs`,
      text: [renderTable(['tool', 'wall s', 'collect ms', 'steps 1-4 ms', 'bracket ms', 'peak RSS MiB'], rows)],
      notes: [
        'collect ms: from the first step to the last, inside integ; wall s adds Node start-up, sealing and gzip.',
        "bracket ms: time between the first and the second read of /proc/net/* (in between: each process's fd links only; stat is read before, the rest after, matched by pid + start time).",
      ],
      targets,
      data: {
        processes,
        extra_processes: extra,
        runs: runs.map((r) => ({ wall_s: r.m.wallS, exit: r.m.exitCode, peak_rss_mib: r.m.peakRssMiB, timings: r.j?.timings ?? null })),
        uac_wall_s: uac?.wallS ?? null,
      },
      failed: ok.length !== runs.length,
    };
  },
};
