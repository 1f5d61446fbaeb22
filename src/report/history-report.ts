/**
 * Reports about the generation chain: history, show, and the commands that make or trim
 * generations (accept, prune, export). Every one names the generation digest.
 */
import chalk from 'chalk';
import type { AcceptResult } from '../app/accept.js';
import type { ExportResult } from '../app/export.js';
import type { HistoryResult, ShowResult } from '../app/history.js';
import type { PruneResult } from '../app/prune.js';
import { pathForTerminal, pathJson } from '../core/pathenc.js';
import type { Generation } from '../store/baseline-repo.js';
import { VERSION } from '../version.js';
import { nsToIso, recordJson } from './records.js';
import type { AcceptDocument, ExportDocument, GenerationJson, HistoryDocument, PruneDocument, ShowDocument, ToolJson } from './documents.js';

const TOOL: ToolJson = { name: 'integ', version: VERSION };

/** A generation as JSON, the same shape in every report. */
function generationJson(g: Generation): GenerationJson {
  return {
    generation: g.id,
    kind: g.kind,
    created_at: g.createdAt,
    user: g.user,
    uid: g.uid,
    hostname: g.hostname,
    note: g.note,
    root: g.root,
    policy: { source: g.policySource, digest: g.policyDigest, hash: g.hashAlgos.split(',') },
    entries: g.entryCount,
    bytes: g.totalBytes,
    unreadable: g.errorCount,
    parent: g.parentId === null ? null : { generation: g.parentId, digest: g.parentDigest },
    digest: g.digest,
    signed: g.signature !== null,
    key_id: g.keyId,
  };
}

const signedText = (g: Generation): string => (g.signature ? `signed (key ${g.keyId})` : 'unsigned');

export function historyJson(r: HistoryResult): HistoryDocument {
  return {
    schema: 'integ.history/1',
    tool: TOOL,
    db: r.db,
    current: r.current ? { generation: r.current.id, digest: r.current.digest } : null,
    generations: r.generations.map((h) => ({ ...generationJson(h.generation), accept: h.accept })),
    pruned: r.pruned.map((p) => ({ generation: p.id, digest: p.digest, pruned_at: p.prunedAt })),
    chain: { verified: r.chainProblems.length === 0, problems: r.chainProblems },
  };
}

export function historyText(r: HistoryResult): string {
  const out: string[] = [];
  if (r.pruned.length) {
    const ids = r.pruned.map((p) => p.id);
    out.push(
      chalk.dim(`pruned: ${ids.length === 1 ? `#${ids[0]}` : `#${ids[0]}…#${ids.at(-1)} (${ids.length})`}; the chain is anchored on their recorded digests`),
    );
  }
  for (const { generation: g, accept } of r.generations) {
    const cur = g.id === r.current?.id;
    const head = `${cur ? '*' : ' '} #${String(g.id).padEnd(4)} ${g.createdAt}  ${g.kind.padEnd(8)} ${g.user}${g.uid !== -1 ? ` (uid ${g.uid})` : ''}@${g.hostname}`;
    out.push(cur ? chalk.bold(head) : head);
    out.push(
      `         ${g.entryCount} entries${g.errorCount ? `, ${g.errorCount} unreadable` : ''}, ${signedText(g)}${accept ? `, ${accept.paths} path${accept.paths === 1 ? '' : 's'} from check run #${accept.run}${accept.forced ? ' (some forced)' : ''}` : ''}`,
    );
    if (g.note !== null) out.push(`         note: ${JSON.stringify(g.note)}`);
    out.push(chalk.dim(`         digest ${g.digest}`));
  }
  if (!r.generations.length) out.push('no generations yet (run "integ baseline")');
  else out.push(`${r.generations.length} generation${r.generations.length === 1 ? '' : 's'}; current #${r.current!.id} ${r.current!.digest}`);
  if (r.chainProblems.length) {
    out.push(chalk.red.bold('THE CHAIN DOES NOT VERIFY (the store was edited; do not trust these generations):'));
    for (const p of r.chainProblems) out.push(chalk.red(`  - ${p}`));
  } else if (r.generations.length) out.push('chain verified (headers linked by digest; rows are re-hashed by check, diff and export)');
  return `${out.join('\n')}\n`;
}

export function showJson(r: ShowResult): ShowDocument {
  return {
    schema: 'integ.show/1',
    tool: TOOL,
    db: r.db,
    ...pathJson(r.path, 'path'),
    generations: r.rows.map((row) => ({
      generation: row.generation.id,
      kind: row.generation.kind,
      created_at: row.generation.createdAt,
      note: row.generation.note,
      digest: row.generation.digest,
      change: row.change,
      attributes: row.attributes,
      accepted: row.accepted,
      rule: row.entry?.rule ?? null,
      error: row.entry?.error ?? null,
      record: row.entry ? recordJson(row.entry.rec) : null,
    })),
  };
}

export function showText(r: ShowResult): string {
  const out: string[] = [pathForTerminal(r.path)];
  for (const row of r.rows) {
    const g = row.generation;
    out.push(
      `  #${String(g.id).padEnd(4)} ${g.createdAt}  ${g.kind.padEnd(8)} ${g.digest.slice(0, 23)}…${g.note !== null ? `  ${JSON.stringify(g.note)}` : ''}`,
    );
    const e = row.entry;
    const change =
      row.change === 'changed' ? `changed [${row.attributes.join(', ')}]` : row.change === 'first' ? '' : row.change === 'absent' ? '' : row.change;
    const acc = row.accepted ? ` (accepted${row.accepted.recheck === 'forced' ? ' with --force' : ''})` : '';
    if (!e) {
      out.push(`         ${row.change === 'removed' ? 'removed' : 'not present'}${acc}`);
      continue;
    }
    const r2 = e.rec;
    const what = [
      r2.type,
      r2.mode.toString(8).padStart(4, '0'),
      `${r2.uid}:${r2.gid}`,
      ...(r2.type === 'file' ? [`${r2.size} B`] : []),
      `mtime ${nsToIso(r2.mtimeNs)}`,
      ...(r2.target ? [`→ ${pathForTerminal(r2.target)}`] : []),
      ...(r2.blake3 ? [`blake3:${r2.blake3.slice(0, 16)}…`] : []),
      ...(r2.sha256 ? [`sha256:${r2.sha256.slice(0, 16)}…`] : []),
      ...(e.error ? [`unreadable (${e.error})`] : []),
    ].join('  ');
    out.push(`         ${what}${change ? chalk.yellow(`  ${change}`) : ''}${acc}`);
  }
  return `${out.join('\n')}\n`;
}

const KIND_LABEL = { added: 'ADDED  ', removed: 'REMOVED', changed: 'CHANGED' } as const;

export function acceptJson(r: AcceptResult): AcceptDocument {
  return {
    schema: 'integ.accept/1',
    tool: TOOL,
    generation: generationJson(r.generation),
    parent: { generation: r.parent.id, digest: r.parent.digest },
    run: { id: r.run.id, finished_at: r.run.finishedAt, findings_digest: r.run.findingsDigest },
    accepted: r.accepted.map((a) => ({
      ...pathJson(a.path, 'path'),
      kind: a.kind,
      rule: a.rule,
      severity: a.severity,
      attributes: a.attributes,
      recheck: a.recheck,
      changed_since: a.changedSince,
    })),
    remaining: r.remaining,
    exit_code: r.exitCode,
  };
}

export function acceptText(r: AcceptResult): string {
  const g = r.generation;
  const out: string[] = [];
  for (const a of r.accepted) {
    out.push(`  ${KIND_LABEL[a.kind]}  ${pathForTerminal(a.path)}${a.kind === 'changed' ? `  [${a.attributes.join(', ')}]` : ''}  (${a.rule})`);
    if (a.recheck === 'forced')
      out.push(chalk.yellow(`           changed again since the check (${a.changedSince.join(', ')}); recorded as the check saw it (--force)`));
  }
  out.push(
    `accepted ${r.accepted.length} finding${r.accepted.length === 1 ? '' : 's'} of check run #${r.run.id} (${r.run.finishedAt}) ` +
      `into generation #${g.id} (accept, parent #${r.parent.id}) by ${g.user} (uid ${g.uid}): ${JSON.stringify(g.note)}`,
  );
  if (r.remaining)
    out.push(
      chalk.dim(
        `note: ${r.remaining} finding${r.remaining === 1 ? '' : 's'} of that check not accepted; the next check reports ${r.remaining === 1 ? 'it' : 'them'} again`,
      ),
    );
  out.push(`digest ${g.digest}${g.signature ? ` (signed, key ${g.keyId})` : ''}`);
  return `${out.join('\n')}\n`;
}

export function pruneJson(r: PruneResult): PruneDocument {
  return {
    schema: 'integ.prune/1',
    tool: TOOL,
    db: r.db,
    dry_run: r.dryRun,
    current: { generation: r.current.id, digest: r.current.digest },
    kept: r.kept.map((g) => ({ generation: g.id, digest: g.digest })),
    pruned: r.pruned.map((p) => ({ generation: p.id, digest: p.digest })),
    runs_deleted: r.runsDeleted,
    vacuumed: r.vacuumed,
    bytes_before: r.bytesBefore,
    bytes_after: r.bytesAfter,
  };
}

export function pruneText(r: PruneResult): string {
  const out: string[] = [];
  if (!r.pruned.length) out.push(`nothing to prune: ${r.kept.length} generation${r.kept.length === 1 ? '' : 's'}, keeping ${r.kept.length}`);
  else {
    out.push(
      `${r.dryRun ? 'would prune' : 'pruned'} ${r.pruned.length} generation${r.pruned.length === 1 ? '' : 's'} (${r.pruned.map((p) => `#${p.id}`).join(', ')})` +
        `${r.dryRun ? '' : `, ${r.runsDeleted} run${r.runsDeleted === 1 ? '' : 's'}`}; kept ${r.kept.map((g) => `#${g.id}`).join(', ')}`,
    );
    const anchor = r.pruned.at(-1)!;
    out.push(chalk.dim(`chain anchor: #${anchor.id} ${anchor.digest}`));
    if (!r.dryRun && r.bytesBefore !== null && r.bytesAfter !== null)
      out.push(
        chalk.dim(
          `store: ${(r.bytesBefore / 1e6).toFixed(2)} MB → ${(r.bytesAfter / 1e6).toFixed(2)} MB${r.vacuumed ? ' (vacuumed)' : ' (space is reused by later generations; --vacuum gives it back now)'}`,
        ),
      );
  }
  out.push(`current generation #${r.current.id} digest ${r.current.digest}`);
  return `${out.join('\n')}\n`;
}

export function exportJson(r: ExportResult): ExportDocument {
  return {
    schema: 'integ.export/1',
    tool: TOOL,
    source: r.source,
    out: r.out,
    generation: generationJson(r.generation),
    omitted: r.omitted,
    journal_mode: r.journalMode,
    bytes: r.bytes,
    sha256: r.sha256,
  };
}

export function exportText(r: ExportResult): string {
  const g = r.generation;
  return (
    [
      `exported generation #${g.id} (${g.kind}, ${g.createdAt}, ${g.entryCount} entries, ${signedText(g)}) to ${r.out}`,
      `digest ${g.digest}`,
      `file   ${r.bytes} bytes, sha256 ${r.sha256}, journal_mode ${r.journalMode}`,
      chalk.dim(`check against it from read-only media: integ check --db ${r.out} --expect-digest ${g.digest}`),
    ].join('\n') + '\n'
  );
}
