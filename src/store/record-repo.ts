import type { DB } from './db.js';
import { blake3Hex } from '../scan/blake3.js';

function hasTable(db: DB, name: string): boolean {
  return Boolean(db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name));
}

/** An evidence bundle integ sealed (check alert, restore, snapshot recorded with --db). */
export interface EvidenceRow {
  id?: number;
  sealedAt: string;
  kind: 'alert' | 'restore' | 'snapshot' | 'drill';
  path: string;
  sha256: string;
  size: number | null;
  run: number | null;
  gen: number | null;
  note: string | null;
}

export class EvidenceRepo {
  readonly available: boolean;
  constructor(readonly db: DB) {
    this.available = hasTable(db, 'evidence');
  }

  add(e: EvidenceRow): number {
    return Number(
      this.db
        .prepare('INSERT INTO evidence (sealed_at, kind, path, sha256, size, run, gen, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(e.sealedAt, e.kind, e.path, e.sha256, e.size, e.run, e.gen, e.note).lastInsertRowid,
    );
  }

  list(): EvidenceRow[] {
    if (!this.available) return [];
    return (this.db.prepare('SELECT * FROM evidence ORDER BY sealed_at, id').all() as Record<string, unknown>[]).map((r) => ({
      id: Number(r.id),
      sealedAt: r.sealed_at as string,
      kind: r.kind as EvidenceRow['kind'],
      path: r.path as string,
      sha256: r.sha256 as string,
      size: r.size === null ? null : Number(r.size),
      run: r.run === null ? null : Number(r.run),
      gen: r.gen === null ? null : Number(r.gen),
      note: (r.note as string | null) ?? null,
    }));
  }
}

/** A responder's note: who, when, where, what; hash-chained, optionally signed. */
export interface Note {
  id: number;
  createdAt: string;
  user: string;
  uid: number;
  hostname: string;
  text: string;
  prevDigest: string | null;
  digest: string;
  signature: string | null;
  keyId: string | null;
}

/** The canonical digest of a note: its fields and the digest of the note before it (the chain). */
export function noteDigest(n: Omit<Note, 'digest' | 'signature' | 'keyId'>): string {
  return `blake3:${blake3Hex(
    [
      'integ.note/1',
      `id ${n.id}`,
      `prev ${n.prevDigest ?? '-'}`,
      `created_at ${n.createdAt}`,
      `user ${JSON.stringify(n.user)} uid ${n.uid}`,
      `hostname ${JSON.stringify(n.hostname)}`,
      `text ${JSON.stringify(n.text)}`,
      '',
    ].join('\n'),
  )}`;
}

export class NoteRepo {
  readonly available: boolean;
  constructor(readonly db: DB) {
    this.available = hasTable(db, 'notes');
  }

  list(): Note[] {
    if (!this.available) return [];
    return (this.db.prepare('SELECT * FROM notes ORDER BY id').all() as Record<string, unknown>[]).map((r) => ({
      id: Number(r.id),
      createdAt: r.created_at as string,
      user: r.user as string,
      uid: Number(r.uid),
      hostname: r.hostname as string,
      text: r.text as string,
      prevDigest: (r.prev_digest as string | null) ?? null,
      digest: r.digest as string,
      signature: (r.signature as string | null) ?? null,
      keyId: (r.key_id as string | null) ?? null,
    }));
  }

  /** Append a note in one write transaction; it links to the newest note's digest. */
  append(
    n: { createdAt: string; user: string; uid: number; hostname: string; text: string },
    sign: ((digest: string) => { signature: string; keyId: string }) | null,
  ): Note {
    return this.db
      .transaction(() => {
        const last = this.db.prepare('SELECT id, digest FROM notes ORDER BY id DESC LIMIT 1').get() as { id: number; digest: string } | undefined;
        const id = (last?.id ?? 0) + 1;
        const base = { id, ...n, prevDigest: last?.digest ?? null };
        const digest = noteDigest(base);
        const sig = sign ? sign(digest) : null;
        this.db
          .prepare(
            'INSERT INTO notes (id, created_at, user, uid, hostname, text, prev_digest, digest, signature, key_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
          )
          .run(id, n.createdAt, n.user, n.uid, n.hostname, n.text, base.prevDigest, digest, sig?.signature ?? null, sig?.keyId ?? null);
        return { ...base, digest, signature: sig?.signature ?? null, keyId: sig?.keyId ?? null };
      })
      .immediate();
  }
}

/**
 * Problems with the notes chain: each note's digest must be recomputable from its fields, and
 * each must name the digest of the note before it (ids without gaps). An edited text, time or
 * author, a deleted or re-ordered note in the middle shows here. With `verify`, signatures are
 * checked like generations': every signed note must verify, and once one is signed every later
 * one must be too.
 */
export function noteProblems(db: DB, verify?: (digest: string, signature: string) => boolean): string[] {
  const notes = new NoteRepo(db).list();
  const problems: string[] = [];
  let prev: Note | null = null;
  let seenSigned = false;
  for (const n of notes) {
    if (noteDigest(n) !== n.digest) problems.push(`note #${n.id}: its text, time or author does not match its recorded digest (note edited)`);
    if (prev === null ? n.id !== 1 || n.prevDigest !== null : n.id !== prev.id + 1 || n.prevDigest !== prev.digest)
      problems.push(`note #${n.id}: does not link to ${prev ? `note #${prev.id}` : 'the start of the chain'} (a note was deleted, inserted or re-ordered)`);
    if (verify) {
      if (n.signature) {
        seenSigned = true;
        if (!verify(n.digest, n.signature)) problems.push(`note #${n.id}: signature does not verify`);
      } else if (seenSigned) problems.push(`note #${n.id} is not signed, though an earlier note is (signature dropped)`);
    }
    prev = n;
  }
  return problems;
}
