import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runMeasured, tail, type Measured } from './proc.js';

/** The repository root (bench/lib/integ.ts runs from dist/bench/lib/integ.js). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const INTEG_BIN = path.join(REPO_ROOT, 'bin', 'integ.js');

/** A one-rule policy covering everything below the given roots. */
export function writePolicy(file: string, roots: string[], hash: 'blake3' | 'sha256', extra: { check?: string[]; ioc?: string } = {}): string {
  const paths = roots.map((r) => JSON.stringify(`${r.replace(/\/+$/, '')}/**`)).join(', ');
  const ioc = extra.ioc ? `ioc: [${JSON.stringify(extra.ioc)}]\n` : '';
  const check = extra.check ? `    check: [${extra.check.join(', ')}]\n` : '';
  fs.writeFileSync(file, `version: 1\nhash: ${hash}\n${ioc}rules:\n  - name: bench\n    paths: [${paths}]\n${check}`);
  return file;
}

const ENV = { ...process.env, NO_COLOR: '1', INTEG_NO_PROGRESS: '1' };

export interface IntegCheck extends Measured {
  /** entries the check reported as scanned (summary.scanned), null when the report did not parse */
  scanned: number | null;
  summary: Record<string, number> | null;
}

export async function integBaseline(
  db: string,
  policy: string,
  jobs: number,
  scratch: string,
  label: string,
  extra: string[] = [],
  /** false: a baseline into the store as it is (a new generation after the ones there), not into a new store */
  fresh = true,
): Promise<Measured> {
  if (fresh) for (const f of [db, `${db}-wal`, `${db}-shm`]) fs.rmSync(f, { force: true });
  const m = await runMeasured(process.execPath, [INTEG_BIN, 'baseline', '--db', db, '--policy', policy, '--jobs', String(jobs), ...extra], {
    scratch,
    label,
    env: ENV,
  });
  if (m.exitCode !== 0) throw new Error(`integ baseline failed (exit ${m.exitCode}):\n${tail(m.stderrFile)}`);
  return m;
}

/** `integ check --no-snapshot --format json`; the caller decides what a non-zero exit means. */
export async function integCheck(db: string, policy: string, jobs: number, scratch: string, label: string, nodeArgs: string[] = []): Promise<IntegCheck> {
  const m = await runMeasured(
    process.execPath,
    [...nodeArgs, INTEG_BIN, 'check', '--db', db, '--policy', policy, '--jobs', String(jobs), '--no-snapshot', '--format', 'json'],
    {
      scratch,
      label,
      env: ENV,
    },
  );
  let summary: Record<string, number> | null = null;
  try {
    summary = (JSON.parse(fs.readFileSync(m.stdoutFile, 'utf8')) as { summary: Record<string, number> }).summary;
  } catch {
    /* no report: the exit code and stderr say why */
  }
  return { ...m, scanned: summary?.scanned ?? null, summary };
}

export function describeFailure(m: Measured): string {
  return `exit ${m.exitCode}${m.signal ? ` (${m.signal})` : ''}: ${tail(m.stderrFile, 5) || tail(m.stdoutFile, 5)}`;
}
