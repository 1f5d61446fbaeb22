import type { RestoreResult } from '../app/restore.js';
import { pathForTerminal, pathJson } from '../core/pathenc.js';
import { recordJson } from './records.js';

export function restoreJson(r: RestoreResult): Record<string, unknown> {
  return {
    schema: 'integ.restore/1',
    dry_run: r.dryRun,
    root: r.root,
    source_generation: r.source.id,
    generation: r.generation
      ? {
          id: r.generation.id,
          kind: r.generation.kind,
          digest: r.generation.digest,
          created_at: r.generation.createdAt,
          user: r.generation.user,
          note: r.generation.note,
        }
      : null,
    bundle: r.bundle,
    paths: r.items.map((it) => ({
      ...pathJson(it.path),
      type: it.entry.rec.type,
      action: it.action,
      differed: it.differs,
      content_digest: it.contentDigest,
      attributes_set: it.metaChanged,
      not_restored: it.notRestored,
      after: it.after ? recordJson(it.after) : null,
    })),
    exit_code: r.exitCode,
  };
}

export function restoreText(r: RestoreResult): string {
  const out: string[] = [];
  const mode = (m: number) => m.toString(8).padStart(4, '0');
  if (r.bundle) out.push(`suspect versions sealed first: ${r.bundle.path}`, `sha256: ${r.bundle.sha256}`);
  for (const it of r.items) {
    const e = it.entry.rec;
    const what = `${e.type}, mode ${mode(e.mode)}, owner ${e.uid}:${e.gid}${it.contentDigest ? `, content ${it.contentDigest.slice(0, 19)}…` : ''}${e.type === 'symlink' && e.target ? ` → ${pathForTerminal(e.target)}` : ''}`;
    const verb = it.action === 'unchanged' ? 'already known-good' : it.action === 'would restore' ? 'would restore' : 'restored';
    out.push(
      `${verb.padEnd(18)} ${pathForTerminal(it.path)}  from generation #${r.source.id} (${what})${it.differs.length ? `  [was: ${it.differs.join(', ')}]` : ''}`,
    );
    if (it.metaChanged.length) out.push(`${' '.repeat(19)}extended attributes/flags: ${it.metaChanged.join(' ')}`);
    for (const n of it.notRestored) out.push(`${' '.repeat(19)}NOT restored: ${n.attribute} ${n.name}: ${n.reason}`);
  }
  if (r.dryRun) out.push(`dry run under ${r.root}: nothing sealed, written or recorded`);
  else if (!r.generation) out.push('nothing to restore: every path already is its known-good version (nothing sealed, written or recorded)');
  else {
    const partial = r.items.filter((it) => it.notRestored.length).length;
    if (partial)
      out.push(`${partial} path(s) restored without some recorded attributes (listed above); the restore generation records them as they are now (exit 8)`);
    out.push(
      `generation #${r.generation.id} (restore by ${r.generation.user}, ${r.generation.createdAt}) recorded, digest ${r.generation.digest}; the next check is clean for these paths`,
    );
  }
  return `${out.join('\n')}\n`;
}
