import { openWritable, storeError } from '../store/db.js';
import { NoteRepo, noteProblems, type Note } from '../store/record-repo.js';
import type { RunContext } from '../util/context.js';
import { IntegError, TrustError, UsageError } from '../util/errors.js';
import { whoami } from './common.js';
import { signDigest } from './signing.js';

export interface NoteOptions {
  text: string;
  db: string;
  signKey?: string;
}

/** Longest note accepted (characters). */
export const NOTE_MAX = 16384;

/** Validate a note's text: one clear line for each problem. */
export function checkNoteText(text: string | undefined): string {
  if (text === undefined || !text.trim()) throw new UsageError('a note needs TEXT: integ note "what you saw or did"');
  if (text.includes('\0')) throw new UsageError('a note cannot contain NUL characters');
  if (text.length > NOTE_MAX)
    throw new UsageError(`a note is at most ${NOTE_MAX} characters (this one has ${text.length}); put long material in a file and note its hash`);
  return text;
}

/**
 * Append a note (who, when, host, text) to the store's hash-chained notes. Refused (16) when
 * the existing chain does not verify: a note is never added on top of an edited record.
 */
export async function runNote(opts: NoteOptions, ctx: RunContext): Promise<Note> {
  const text = checkNoteText(opts.text);
  const sign = opts.signKey ? await signDigest(opts.signKey) : null;
  // The record may start before any baseline (a host never baselined, an incident in progress):
  // a note may create the store, like baseline does.
  const db = openWritable(opts.db, { init: true });
  try {
    const problems = noteProblems(db);
    if (problems.length) throw new TrustError(`the notes in ${opts.db} are not trustworthy, nothing added:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    const who = whoami();
    const n = new NoteRepo(db).append({ createdAt: new Date().toISOString(), user: who.user, uid: who.uid, hostname: who.hostname, text }, sign);
    ctx.log.info({ note: n.id, digest: n.digest }, 'note recorded');
    return n;
  } catch (e) {
    if (e instanceof IntegError) throw e;
    throw storeError(e, opts.db);
  } finally {
    db.close();
  }
}
