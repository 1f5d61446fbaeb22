import chalk from 'chalk';
import type { Difference, DiffSide, DiffSummary, StoreDiff } from '../app/store-diff.js';
import { pathForTerminal, pathJson } from '../core/pathenc.js';
import { exitCodeOf } from '../core/verdict.js';
import type { DiffSideJson, StoreDiffDocumentHead } from './documents.js';
import { VERSION } from '../version.js';
import { describeChanges, recordJson } from './records.js';

/** Where rendered text goes; buffered so a million differences are not a million writes. */
export type Sink = (chunk: string) => void;

function buffered(sink: Sink): { push(s: string): void; flush(): void } {
  let buf = '';
  return {
    push(s) {
      buf += s;
      if (buf.length >= 1 << 16) {
        sink(buf);
        buf = '';
      }
    },
    flush() {
      if (buf) sink(buf);
      buf = '';
    },
  };
}

function sideJson(s: DiffSide): DiffSideJson {
  const g = s.generation;
  return {
    db: s.db,
    generation: g.id,
    kind: g.kind,
    created_at: g.createdAt,
    hostname: g.hostname,
    note: g.note,
    entries: g.entryCount,
    digest: g.digest,
    signed: g.signature !== null,
  };
}

function detail(d: Difference): string {
  return describeChanges(d.a!, d.b!, d.attributes);
}

const LABEL = { added: 'ADDED  ', removed: 'REMOVED', changed: 'CHANGED' } as const;
const WHERE = { added: '  (only in B)', removed: '  (only in A)', changed: '' } as const;

/**
 * Render a store diff as it streams and return its summary. JSON is one document, written incrementally: `integ.diff/1`.
 */
export function renderStoreDiff(d: StoreDiff, format: 'text' | 'json', sink: Sink): DiffSummary {
  const out = buffered(sink);
  const side = (label: string, s: DiffSide): string =>
    `${label}: ${s.db}  generation #${s.generation.id} (${s.generation.kind}, ${s.generation.hostname}, ${s.generation.createdAt}) ${s.generation.digest}`;
  if (format === 'json') {
    const head: StoreDiffDocumentHead = {
      schema: 'integ.diff/1',
      tool: { name: 'integ', version: VERSION },
      a: sideJson(d.a),
      b: sideJson(d.b),
      attributes: d.attributes,
      notices: d.notices,
    };
    out.push(`${JSON.stringify(head, null, 2).slice(0, -2)},\n  "differences": [`);
  } else {
    out.push(`${side('A', d.a)}\n${side('B', d.b)}\n`);
    for (const n of d.notices) out.push(chalk.yellow(`note: ${n}\n`));
  }
  let first = true;
  let step = d.differences.next();
  while (!step.done) {
    const x = step.value;
    if (format === 'json') {
      const item = { ...pathJson(x.path, 'path'), kind: x.kind, attributes: x.attributes, a: x.a ? recordJson(x.a) : null, b: x.b ? recordJson(x.b) : null };
      out.push(`${first ? '' : ','}\n    ${JSON.stringify(item)}`);
    } else {
      out.push(`  ${LABEL[x.kind]}  ${pathForTerminal(x.path)}${x.kind === 'changed' ? `  [${x.attributes.join(', ')}]` : ''}${WHERE[x.kind]}\n`);
      if (x.kind === 'changed') out.push(chalk.dim(`           ${detail(x)}\n`));
    }
    first = false;
    step = d.differences.next();
  }
  const s = step.value;
  const n = s.added + s.removed + s.changed;
  const exit = exitCodeOf({ command: 'diff', same: n === 0 });
  if (format === 'json') {
    out.push(
      `${first ? '' : '\n  '}],\n  "summary": ${JSON.stringify({ added: s.added, removed: s.removed, changed: s.changed, entries_a: s.entriesA, entries_b: s.entriesB })},\n  "exit_code": ${exit}\n}\n`,
    );
  } else {
    out.push(
      n === 0
        ? `${chalk.green('SAME')} no differences (${s.entriesA} entries each, compared: ${d.attributes.join(' ')}) — exit ${exit}\n`
        : `${chalk.bold.red('DIFFERENT')} ${n} path${n === 1 ? '' : 's'} differ: ${s.added} only in B, ${s.removed} only in A, ${s.changed} changed ` +
            `(${s.entriesA} vs ${s.entriesB} entries) — exit ${exit}\n`,
    );
  }
  out.flush();
  return s;
}
