import { readBundle } from '../evidence/bundle-reader.js';
import { diffSnapshots, type SnapshotDiff } from '../evidence/snapshot-diff.js';
import type { RunContext } from '../util/context.js';
import { DataError } from '../util/errors.js';

async function artifactsOf(p: string): Promise<Map<string, unknown>> {
  const b = await readBundle(p);
  if (b.problems.length) throw new DataError(`${p}: not a readable evidence bundle: ${b.problems[0]} (run "integ verify" on it)`);
  const m = new Map<string, unknown>();
  for (const [file, data] of b.files) {
    const match = /^artifacts\/(.+)\.json$/.exec(file);
    if (!match) continue;
    try {
      m.set(match[1]!, JSON.parse(data.toString('utf8')));
    } catch {
      throw new DataError(`${p}: ${file} is not valid JSON`);
    }
  }
  return m;
}

/**
 * `integ diff A.tar.gz B.tar.gz`: what is new or gone between two snapshots, matched by stable
 * keys (executable, command line, user, port …), never pids. Returns data; report/ renders it.
 */
export async function diffBundles(a: string, b: string, ctx: RunContext): Promise<SnapshotDiff> {
  const [ma, mb] = [await artifactsOf(a), await artifactsOf(b)];
  const d = diffSnapshots(ma, mb);
  ctx.log.info({ a, b, same: d.same }, 'snapshot diff');
  return d;
}
