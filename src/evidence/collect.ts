/**
 * The snapshot orchestrator: runs the collectors in order of volatility, each within a
 * time bound, hands every artifact and raw copy to the bundle sink, logs each step, and
 * returns the manifest's artifact list in collection order.
 */
import { UsageError } from '../util/errors.js';
import { throwIfAborted } from '../util/abort.js';
import { bundleSafePath } from './collectors/fsread.js';
import { STEPS, type CollectorStep, type StepShared } from './collectors/index.js';
import type { FindingsResult, IocMatcher } from './findings.js';
import type { ArtifactOutput, BundleSink, CollectContext, CollectError, ManifestArtifact } from './types.js';
import { assertLinux } from '../util/platform.js';

export interface StepResult {
  step: string;
  name: string;
  method: string;
  started_at: string;
  finished_at: string;
  status: 'ok' | 'partial' | 'failed' | 'timeout';
  error: string | null;
  errors: CollectError[];
  duration_ms: number;
}

export interface CollectAllOptions {
  /** overrides of /proc, /sys and / (tests use fixtures/) */
  ctx?: Partial<CollectContext>;
  /** the run's abort signal (SIGINT/SIGTERM) */
  signal: AbortSignal;
  /** one time bound (ms) for every step instead of each step's default */
  stepTimeoutMs?: number;
  /** run only these steps (by step name or artifact name) */
  only?: string[];
  /** integ's argv, recorded in the system artifact */
  argv: string[];
  /** replaces the collection steps (tests of the orchestrator itself) */
  steps?: readonly CollectorStep[];
  /** known-bad digests for ioc_match findings (the IOC feeds) */
  iocMatch?: IocMatcher;
  /** keep password hashes of shadow/gshadow (default: redacted) */
  shadowHashes?: boolean;
}

export interface CollectAllResult {
  artifacts: ManifestArtifact[];
  steps: StepResult[];
  timings: { core_bracket_ms: number; steps_1_4_ms: number; total_ms: number };
  /** the findings step's artifact, when it ran */
  findings: FindingsResult | null;
}

/** Time a step that does not return gets after its bound before it is abandoned. */
const HARD_STOP_GRACE_MS = 1000;
/** Errors kept per step in the log line (all of them are in StepResult.errors). */
const LOG_ERRORS_MAX = 1000;

class StepTimeout extends Error {}

function selectSteps(all: readonly CollectorStep[], only: string[] | undefined): readonly CollectorStep[] {
  if (!only || only.length === 0) return all;
  const known = new Set(all.flatMap((s) => [s.name, ...s.artifacts]));
  const unknown = only.filter((n) => !known.has(n));
  if (unknown.length) throw new UsageError(`unknown snapshot step or artifact: ${unknown.join(', ')} (known: ${all.map((s) => s.name).join(', ')})`);
  return all.filter((s) => only.includes(s.name) || s.artifacts.some((a) => only.includes(a)));
}

function statusOf(errors: CollectError[]): 'ok' | 'partial' | 'timeout' {
  if (errors.some((e) => e.code === 'TIMEOUT')) return 'timeout';
  return errors.length ? 'partial' : 'ok';
}

function summarise(errors: CollectError[]): string | null {
  if (errors.length === 0) return null;
  const head = errors.slice(0, 3).map((e) => `${e.code}${e.path ? ` ${e.path}` : ''}: ${e.message}`);
  return `${errors.length} error${errors.length === 1 ? '' : 's'}: ${head.join('; ')}${errors.length > 3 ? '; …' : ''}`;
}

/**
 * Run the snapshot's collection steps in order. Throws UsageError off Linux and
 * InterruptedError when `signal` aborts (the caller discards the partial bundle).
 */
export async function collectAll(sink: BundleSink, opts: CollectAllOptions): Promise<CollectAllResult> {
  assertLinux();
  const steps = selectSteps(opts.steps ?? STEPS, opts.only);
  const tStart = performance.now();
  const base = { procRoot: opts.ctx?.procRoot ?? '/proc', sysRoot: opts.ctx?.sysRoot ?? '/sys', fsRoot: opts.ctx?.fsRoot ?? '/' };
  const shared: StepShared = { argv: opts.argv, artifacts: new Map(), iocMatch: opts.iocMatch, shadowHashes: opts.shadowHashes };
  const artifacts: ManifestArtifact[] = [];
  const results: StepResult[] = [];
  let coreBracketMs = 0;
  let t14Start: number | null = null;
  let t14End: number | null = null;

  const checkInterrupted = (): void => {
    throwIfAborted(opts.signal);
  };

  for (const step of steps) {
    checkInterrupted();
    const timeoutMs = opts.stepTimeoutMs ?? step.timeoutMs;
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(opts.signal.reason);
    opts.signal.addEventListener('abort', onAbort, { once: true });
    const startedMs = Date.now();
    const started = new Date(startedMs).toISOString();
    const t0 = performance.now();
    if (Number(step.step) <= 4 && t14Start === null) t14Start = t0;
    sink.log({ event: 'step_start', step: step.step, name: step.name, method: step.method, started_at: started, timeout_ms: timeoutMs });

    const ctx: CollectContext = { ...base, signal: controller.signal, deadline: startedMs + timeoutMs };
    const timer = setTimeout(() => controller.abort(new StepTimeout(`step ${step.name} reached its ${timeoutMs} ms bound`)), timeoutMs);
    let hardTimer: NodeJS.Timeout | undefined;
    const hardStop = new Promise<never>((_, reject) => {
      hardTimer = setTimeout(
        () => reject(new StepTimeout(`step ${step.name} did not stop within ${timeoutMs + HARD_STOP_GRACE_MS} ms`)),
        timeoutMs + HARD_STOP_GRACE_MS,
      );
    });
    let out: ArtifactOutput | null = null;
    let failure: { status: 'failed' | 'timeout'; message: string } | null = null;
    try {
      const running = step.run(ctx, shared);
      running.catch(() => undefined); // if abandoned at the hard stop, a late rejection must not go unhandled
      out = await Promise.race([running, hardStop]);
    } catch (err) {
      failure =
        err instanceof StepTimeout ? { status: 'timeout', message: err.message } : { status: 'failed', message: (err as Error)?.message ?? String(err) };
    } finally {
      clearTimeout(timer);
      clearTimeout(hardTimer);
      opts.signal.removeEventListener('abort', onAbort);
    }
    const t1 = performance.now();
    const finished = new Date().toISOString();
    checkInterrupted();
    if (Number(step.step) <= 4) t14End = t1;

    const errors: CollectError[] = out?.errors ?? [];
    if (failure) errors.push({ code: failure.status === 'timeout' ? 'TIMEOUT' : 'EFAILED', message: failure.message });
    const status: StepResult['status'] = failure ? failure.status : statusOf(errors);

    if (out) {
      for (const j of out.json) {
        const mine = errors.filter((e) => e.artifact === undefined || e.artifact === j.name);
        shared.artifacts?.set(j.name, j.data);
        const res = await sink.addFile(`artifacts/${j.name}.json`, JSON.stringify(j.data, null, 2));
        artifacts.push({
          name: j.name,
          file: res.file,
          method: j.method ?? step.method,
          started_at: started,
          finished_at: finished,
          status: statusOf(mine),
          error: summarise(mine),
          size: res.size,
          sha256: res.sha256,
        });
        if (j.name === 'core_churn') coreBracketMs = (j.data as { bracket_ms?: number }).bracket_ms ?? 0;
      }
      for (const r of out.raw) {
        const rel = `raw/${bundleSafePath(r.file)}`;
        const res = await sink.addFile(rel, r.data);
        artifacts.push({
          name: rel,
          file: res.file,
          method: `raw copy read by step ${step.name}`,
          started_at: started,
          finished_at: finished,
          status: 'ok',
          error: null,
          size: res.size,
          sha256: res.sha256,
        });
      }
    } else {
      // Nothing came back: still list every artifact the step owes, saying why it is empty.
      for (const name of step.artifacts) {
        const res = await sink.addFile(
          `artifacts/${name}.json`,
          JSON.stringify({ status: failure?.status ?? 'failed', error: failure?.message ?? null }, null, 2),
        );
        artifacts.push({
          name,
          file: res.file,
          method: step.method,
          started_at: started,
          finished_at: finished,
          status: failure?.status ?? 'failed',
          error: failure?.message ?? null,
          size: res.size,
          sha256: res.sha256,
        });
      }
    }

    const duration = Math.round((t1 - t0) * 1000) / 1000;
    const result: StepResult = {
      step: step.step,
      name: step.name,
      method: step.method,
      started_at: started,
      finished_at: finished,
      status,
      error: failure?.message ?? summarise(errors),
      errors,
      duration_ms: duration,
    };
    results.push(result);
    sink.log({
      event: 'step_end',
      step: step.step,
      name: step.name,
      status,
      started_at: started,
      finished_at: finished,
      duration_ms: duration,
      artifacts: out ? out.json.map((j) => j.name) : [...step.artifacts],
      raw_files: out?.raw.length ?? 0,
      error: result.error,
      errors_count: errors.length,
      errors: errors.slice(0, LOG_ERRORS_MAX),
    });
  }

  const round = (ms: number): number => Math.round(ms * 1000) / 1000;
  const f = shared.artifacts?.get('findings') as FindingsResult | undefined;
  return {
    artifacts,
    findings: f && Array.isArray(f.findings) ? { findings: f.findings, notes: f.notes ?? [] } : null,
    steps: results,
    timings: {
      core_bracket_ms: coreBracketMs,
      steps_1_4_ms: t14Start !== null && t14End !== null ? round(t14End - t14Start) : 0,
      total_ms: round(performance.now() - tStart),
    },
  };
}
