import crypto from 'node:crypto';
import fs from 'node:fs';
import { pathToText } from '../core/pathenc.js';
import { BaselineRepo, type Generation } from '../store/baseline-repo.js';
import { allRunFindings, allRuns, restoreRows, type RecordFinding } from '../store/incident-repo.js';
import { openReadOnly, storeError } from '../store/db.js';
import { EvidenceRepo, NoteRepo, type EvidenceRow, type Note } from '../store/record-repo.js';
import type { StoredRun } from '../store/run-repo.js';
import type { RunContext } from '../util/context.js';
import { IntegError, UsageError } from '../util/errors.js';
import { nsToIso } from '../report/records.js';

export type TimelineSource = 'generation' | 'restore' | 'check' | 'finding' | 'file' | 'evidence' | 'triage' | 'note';

/** One event of the incident timeline. Field names follow Timesketch (message, datetime, timestamp_desc). */
export interface TimelineEvent {
  /** nanoseconds since the epoch (sort key) */
  ns: bigint;
  datetime: string;
  timestamp_desc: string;
  source: TimelineSource;
  message: string;
  host: string | null;
  user: string | null;
  path: string | null;
  generation: number | null;
  run: number | null;
  severity: string | null;
  sha256: string | null;
  digest: string | null;
  /** for bodyfile lines of file events */
  file?: { inode: bigint; mode: number; type: string; uid: number; gid: number; size: bigint; mtimeNs: bigint; ctimeNs: bigint };
}

export interface TimelineOptions {
  db: string;
  since?: string;
  until?: string;
}

export interface Timeline {
  events: TimelineEvent[];
  since: string | null;
  until: string | null;
  /** what the record holds, unfiltered (the report uses it) */
  generations: Generation[];
  runs: StoredRun[];
  evidence: EvidenceRow[];
  notes: Note[];
  /** digest of the newest note: write it in your paper notes to pin the record */
  notesHead: string | null;
}

const RELATIVE = /^(\d+)\s*(s|m|h|d|w)$/;

/** --since/--until: an ISO-8601 date or time (UTC unless it says otherwise), or an age such as 30m, 24h, 7d. */
export function parseWhen(flag: string, v: string, now = Date.now()): bigint {
  const rel = RELATIVE.exec(v.trim());
  if (rel) {
    const mult = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[rel[2] as 's'];
    return BigInt(now - Number(rel[1]) * mult * 1000) * 1_000_000n;
  }
  if (!/^\d{4}-\d{2}-\d{2}/.test(v))
    throw new UsageError(`${flag} must be an ISO-8601 time (2026-11-21, 2026-11-21T23:00Z) or an age (30m, 24h, 7d), got "${v}"`);
  const iso = /^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : /[zZ]|[+-]\d{2}:?\d{2}$/.test(v) ? v : `${v}Z`;
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new UsageError(`${flag}: "${v}" is not a valid time`);
  return BigInt(ms) * 1_000_000n;
}

const isoNs = (iso: string): bigint => BigInt(Date.parse(iso)) * 1_000_000n;

function sha256File(p: string): string | null {
  try {
    const h = crypto.createHash('sha256');
    const fd = fs.openSync(p, 'r');
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
    } finally {
      fs.closeSync(fd);
    }
    return h.digest('hex');
  } catch {
    return null;
  }
}

function ev(ns: bigint, source: TimelineSource, desc: string, message: string, f: Partial<TimelineEvent> = {}): TimelineEvent {
  return {
    ns,
    datetime: f.file && source === 'file' ? nsToIso(ns) : new Date(Number(ns / 1_000_000n)).toISOString(),
    timestamp_desc: desc,
    source,
    message,
    host: null,
    user: null,
    path: null,
    generation: null,
    run: null,
    severity: null,
    sha256: null,
    digest: null,
    ...f,
  };
}

/** Triage findings of a snapshot bundle (artifacts/findings.json), when it has them. */
async function triage(bundle: string, at: bigint, host: string | null): Promise<TimelineEvent[]> {
  if (!fs.existsSync(bundle)) return [];
  try {
    const { readBundle } = await import('../evidence/bundle-reader.js');
    const b = await readBundle(bundle, { maxBytes: 64 * 1024 * 1024 });
    const raw = [...b.files.entries()].find(([k]) => k === 'artifacts/findings.json')?.[1];
    if (!raw) return [];
    type T = { kind?: string; severity?: string; pid?: number; path?: string; exe?: string | null; detail?: string };
    // {count, findings: [...], notes} as the snapshot writes it (a bare list is read too)
    const doc = JSON.parse(raw.toString('utf8')) as T[] | { findings?: T[] };
    const list = Array.isArray(doc) ? doc : Array.isArray(doc.findings) ? doc.findings : [];
    return list
      .slice(0, 1000)
      .map((t) =>
        ev(
          at,
          'triage',
          'Triage finding',
          `${t.kind ?? 'finding'}${t.pid !== undefined ? ` pid ${t.pid}` : ''}${t.path ? ` ${t.path}` : ''}: ${t.detail ?? ''}`,
          { host, severity: t.severity ?? null, path: t.path ?? null },
        ),
      );
  } catch {
    return [];
  }
}

/**
 * The incident record in time order: generations (baseline, accept, restore and the paths a
 * restore put back), check runs and their findings, the change times (mtime, ctime) the
 * findings observed, evidence bundles sealed (with sha256), triage findings inside them, and
 * the responder's notes. Reads the store read-only.
 */
export async function buildTimeline(opts: TimelineOptions, ctx: Pick<RunContext, 'log'>): Promise<Timeline> {
  const since = opts.since !== undefined ? parseWhen('--since', opts.since) : null;
  const until = opts.until !== undefined ? parseWhen('--until', opts.until) : null;
  if (since !== null && until !== null && since > until) throw new UsageError('--since is after --until');
  const db = openReadOnly(opts.db);
  try {
    const events: TimelineEvent[] = [];
    const gens = new BaselineRepo(db).list();
    for (const g of gens) {
      const label =
        g.kind === 'baseline'
          ? 'Baseline recorded'
          : g.kind === 'accept'
            ? 'Changes accepted'
            : g.kind === 'restore'
              ? 'Known-good restored'
              : `${g.kind} recorded`;
      events.push(
        ev(
          isoNs(g.createdAt),
          'generation',
          label,
          `generation #${g.id} (${g.kind}) by ${g.user}@${g.hostname}: ${g.entryCount} entries${g.note ? ` — ${g.note}` : ''}`,
          {
            host: g.hostname,
            user: g.user,
            generation: g.id,
            digest: g.digest,
          },
        ),
      );
    }
    const byId = new Map(gens.map((g) => [g.id, g] as const));
    for (const r of restoreRows(db)) {
      const g = byId.get(r.gen);
      if (!g) continue;
      events.push(
        ev(
          isoNs(g.createdAt),
          'restore',
          'File restored',
          `${pathToText(r.path)} restored from generation #${r.fromGen}${r.bundle ? ` (suspect copy in ${r.bundle})` : ''}`,
          { host: g.hostname, user: g.user, path: pathToText(r.path), generation: g.id },
        ),
      );
    }
    const runs = allRuns(db);
    const findingsByRun = new Map<number, RecordFinding[]>();
    for (const f of allRunFindings(db)) {
      const l = findingsByRun.get(f.run);
      if (l) l.push(f);
      else findingsByRun.set(f.run, [f]);
    }
    const fileTimes = new Set<string>();
    for (const r of runs) {
      const at = isoNs(r.finishedAt);
      events.push(
        ev(
          at,
          'check',
          r.exitCode === 0 ? 'Check clean' : 'Check alert',
          `check run #${r.id} against generation #${r.gen ?? '-'}: ${r.added} added, ${r.removed} removed, ${r.changed} changed, ${r.errors} unreadable (exit ${r.exitCode})`,
          {
            host: r.hostname,
            user: r.user,
            run: r.id,
            generation: r.gen,
          },
        ),
      );
      for (const row of findingsByRun.get(r.id) ?? []) {
        const p = pathToText(row.path);
        const attrs = row.attributes;
        events.push(
          ev(at, 'finding', `File ${row.kind} (detected)`, `${row.kind.toUpperCase()} ${p}${attrs ? ` [${attrs}]` : ''} (${row.rule}, ${row.severity})`, {
            host: r.hostname,
            path: p,
            run: r.id,
            severity: row.severity,
            generation: r.gen,
          }),
        );
        if (!row.after) continue;
        const rec = row.after;
        const key = `${rec.path.toString('hex')} ${rec.mtimeNs} ${rec.ctimeNs}`;
        if (fileTimes.has(key)) continue;
        fileTimes.add(key);
        const file = {
          inode: rec.inode,
          mode: rec.mode,
          type: rec.type,
          uid: rec.uid,
          gid: rec.gid,
          size: rec.size,
          mtimeNs: rec.mtimeNs,
          ctimeNs: rec.ctimeNs,
        };
        events.push(
          ev(rec.mtimeNs, 'file', 'Content modification time (mtime)', `${p} modified (as seen by check run #${r.id})`, {
            host: r.hostname,
            path: p,
            run: r.id,
            file,
          }),
        );
        events.push(
          ev(rec.ctimeNs, 'file', 'Metadata change time (ctime)', `${p} inode changed (as seen by check run #${r.id})`, {
            host: r.hostname,
            path: p,
            run: r.id,
            file,
          }),
        );
      }
    }
    // Evidence: the table, plus alert bundles of runs recorded before it existed.
    const evRepo = new EvidenceRepo(db);
    const evidence = evRepo.list();
    const known = new Set(evidence.map((e) => e.path));
    for (const r of runs) {
      if (r.evidence && !known.has(r.evidence)) {
        known.add(r.evidence);
        evidence.push({
          sealedAt: r.finishedAt,
          kind: 'alert',
          path: r.evidence,
          sha256: sha256File(r.evidence) ?? 'unknown (bundle no longer on disk)',
          size: null,
          run: r.id,
          gen: r.gen,
          note: null,
        });
      }
    }
    for (const e of evidence) {
      const at = isoNs(e.sealedAt);
      events.push(
        ev(at, 'evidence', 'Evidence sealed', `${e.kind} bundle ${e.path} sha256 ${e.sha256}`, {
          path: e.path,
          sha256: e.sha256,
          run: e.run,
          generation: e.gen,
        }),
      );
      events.push(...(await triage(e.path, at, null)));
    }
    const notes = new NoteRepo(db).list();
    for (const n of notes)
      events.push(
        ev(isoNs(n.createdAt), 'note', 'Note', `${n.text} (note #${n.id} by ${n.user}@${n.hostname})`, { host: n.hostname, user: n.user, digest: n.digest }),
      );
    const kept = events.filter((e) => (since === null || e.ns >= since) && (until === null || e.ns <= until));
    // Stable: equal times keep the order above (a generation before the paths it restored, a run before its findings).
    kept.sort((a, b) => (a.ns < b.ns ? -1 : a.ns > b.ns ? 1 : 0));
    ctx.log.info({ events: kept.length, total: events.length }, 'timeline built');
    return {
      events: kept,
      since: since === null ? null : new Date(Number(since / 1_000_000n)).toISOString(),
      until: until === null ? null : new Date(Number(until / 1_000_000n)).toISOString(),
      generations: gens,
      runs,
      evidence: evidence.sort((a, b) => a.sealedAt.localeCompare(b.sealedAt)),
      notes,
      notesHead: notes.length ? notes[notes.length - 1]!.digest : null,
    };
  } catch (e) {
    if (e instanceof IntegError) throw e;
    throw storeError(e, opts.db);
  } finally {
    db.close();
  }
}
