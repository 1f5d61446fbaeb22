/**
 * The collection steps of `integ snapshot`, in order of volatility. The orchestrator
 * (../collect.ts) runs them in this order, each within its own time bound.
 */
import type { ArtifactOutput, CollectContext } from '../types.js';
import { collectConfig } from './config.js';
import { collectCore } from './core.js';
import { collectExecutables } from './executables.js';
import { collectKernel } from './kernel.js';
import { collectNetworkState } from './network-state.js';
import type { ProcessRecord } from './processes.js';
import { collectPreflight } from './preflight.js';
import { collectSessions } from './sessions.js';
import { collectFindings } from './maps.js';
import { collectPersistence } from './persistence.js';
import type { IocMatcher } from '../findings.js';

/** What steps hand to later steps within one snapshot. */
export interface StepShared {
  argv: string[];
  /** filled by the core step, reused by the executables step */
  processes?: ProcessRecord[];
  /** every JSON artifact collected so far (name → data), for the findings step */
  artifacts?: Map<string, unknown>;
  /** known-bad digests (IOC feeds), for ioc_match findings */
  iocMatch?: IocMatcher;
  /** keep password hashes in the accounts artifact (default: redacted) */
  shadowHashes?: boolean;
}

export interface CollectorStep {
  /** "1" … "6" */
  step: string;
  name: string;
  /** short description of how it collects (manifest and log) */
  method: string;
  /** the artifacts it produces, in order */
  artifacts: readonly string[];
  /** default time bound in ms */
  timeoutMs: number;
  run(ctx: CollectContext, shared: StepShared): Promise<ArtifactOutput>;
}

function merge(...outs: ArtifactOutput[]): ArtifactOutput {
  return { json: outs.flatMap((o) => o.json), raw: outs.flatMap((o) => o.raw), errors: outs.flatMap((o) => o.errors) };
}

export const STEPS: readonly CollectorStep[] = [
  {
    step: '1',
    name: 'preflight',
    method: 'clocks, boot id, hostname, kernel release, integ identity; RTC skew',
    artifacts: ['system'],
    timeoutMs: 2000,
    run: (ctx, shared) => collectPreflight(ctx, shared.argv),
  },
  {
    step: '2',
    name: 'core',
    method: 'read /proc/net/* (every network namespace), walk /proc/[pid], read /proc/net/* again; probe for hidden pids',
    artifacts: ['processes', 'sockets', 'listening', 'unix_sockets', 'core_churn'],
    timeoutMs: 5000,
    run: (ctx, shared) => collectCore(ctx, shared),
  },
  {
    step: '3',
    name: 'sessions',
    method: 'utmp, logind session files, wtmp (from its end), wtmpdb',
    artifacts: ['sessions', 'logins'],
    timeoutMs: 3000,
    run: (ctx) => collectSessions(ctx),
  },
  {
    step: '4',
    name: 'kernel',
    method: '/proc/modules against /sys/module, taint, mountinfo, routes, neighbours, interfaces, /etc/ld.so.preload',
    artifacts: ['modules', 'kernel', 'mounts', 'ld_so_preload', 'routes', 'neighbours', 'interfaces'],
    timeoutMs: 3000,
    run: async (ctx) => merge(await collectKernel(ctx), await collectNetworkState(ctx)),
  },
  {
    step: '5',
    name: 'executables',
    method: 'sha256 and blake3 of each distinct running executable through /proc/[pid]/exe',
    artifacts: ['executables'],
    timeoutMs: 60_000,
    run: (ctx, shared) => collectExecutables(ctx, shared.processes),
  },
  {
    step: '6',
    name: 'config',
    method: 'copies of resolv.conf, hosts, cron tables, recently changed systemd units',
    artifacts: ['config'],
    timeoutMs: 15_000,
    run: (ctx) => collectConfig(ctx),
  },
  {
    step: '7',
    name: 'findings',
    method: 'findings derived from the artifacts collected; memory maps of the processes they name',
    artifacts: ['findings', 'maps'],
    timeoutMs: 5000,
    run: (ctx, shared) => collectFindings(ctx, shared.artifacts ?? new Map(), shared.iocMatch),
  },
  {
    step: '8',
    name: 'persistence',
    method:
      'accounts, authorized_keys and shell histories of every home, systemd units and timers, cron, at, rc/profile, PAM, udev, ld.so.conf, sudoers; firewall state from /proc',
    artifacts: ['accounts', 'persistence', 'firewall'],
    timeoutMs: 20_000,
    run: (ctx, shared) => collectPersistence(ctx, { shadowHashes: shared.shadowHashes }),
  },
];

export { collectConfig, collectCore, collectExecutables, collectKernel, collectNetworkState, collectPreflight, collectSessions };
