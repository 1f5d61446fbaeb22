import type { Command } from 'commander';

export function registerNote(program: Command): void {
  program
    .command('note')
    .summary('append a note (who, when, host) to the incident record; hash-chained, optionally signed')
    .argument('[text...]', 'what you saw, decided or did (quote it, or give several words)')
    .description(
      "append a note to the store's incident record. Notes are hash-chained like generations\n" +
        '(and signed with --sign-key), so the trust gate of every later command (check, accept, restore …)\n' +
        'fails with 16 when a note was edited, deleted or re-ordered. The timeline and the report show them.',
    )
    .option('--db <file>', 'baseline store (default: $INTEG_DB, else the per-user or system store)')
    .option('--sign-key <file>', 'sign the note with this Ed25519 private key')
    .option('--format <fmt>', 'text or json', 'text')
    .option('--log <file>', 'write JSON logs here instead of stderr')
    .addHelpText(
      'after',
      `
Examples:
  $ sudo integ note "alert from check at 03:12; host isolated from the network by NOC"
  $ sudo integ note "called JPCERT/CC, ticket JPCERT#2026-1234" --sign-key /root/integ.key

Exit: 0 recorded; 64 no text; 16 the existing notes do not verify (nothing added); 75 store busy.`,
    )
    .action(async (words: string[], flags: { db?: string; signKey?: string; format?: string; log?: string }) => {
      const { makeContext, parseFormat } = await import('./run-context.js');
      const format = parseFormat(flags.format);
      const { checkNoteText } = await import('../app/note.js');
      const text = checkNoteText(words.join(' '));
      const { defaultDbPath } = await import('../util/paths.js');
      const ctx = await makeContext(flags.log);
      const { runNote } = await import('../app/note.js');
      const n = await runNote({ text, db: defaultDbPath(flags.db, ctx.env), signKey: flags.signKey }, ctx);
      process.stdout.write(
        format === 'json'
          ? `${JSON.stringify({ schema: 'integ.note/1', id: n.id, created_at: n.createdAt, user: n.user, uid: n.uid, hostname: n.hostname, text: n.text, prev_digest: n.prevDigest, digest: n.digest, signed: n.signature !== null }, null, 2)}\n`
          : `note #${n.id} recorded ${n.createdAt} by ${n.user}@${n.hostname}${n.signature ? ' (signed)' : ''}\ndigest ${n.digest}\n`,
      );
    });
}
