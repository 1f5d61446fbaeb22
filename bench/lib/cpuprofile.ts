import fs from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  /** share of samples per function (self time), largest first */
  top: Array<{ fn: string; where: string; selfMs: number; pct: number }>;
}

/**
 * Self time per function from a V8 .cpuprofile (what `node --cpu-prof` writes, one file
 * per thread, workers included). Time is attributed from the sample deltas.
 */
export function summarizeProfile(file: string, limit = 12): ProfileSummary {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i] is the time before sample i; attribute the next delta to sample i.
    const dt = deltas[i + 1] ?? 0;
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + Math.max(0, dt));
  }
  const agg = new Map<string, { fn: string; where: string; us: number }>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (!n) continue;
    const fn = n.callFrame.functionName || '(anonymous)';
    const where = n.callFrame.url ? `${path.basename(n.callFrame.url)}:${n.callFrame.lineNumber + 1}` : '';
    const key = `${fn}@${where}`;
    const a = agg.get(key) ?? { fn, where, us: 0 };
    a.us += us;
    agg.set(key, a);
  }
  const totalUs = p.endTime - p.startTime;
  const top = [...agg.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, limit)
    .map((a) => ({ fn: a.fn, where: a.where, selfMs: a.us / 1000, pct: (100 * a.us) / Math.max(1, totalUs) }));
  return { file, totalMs: totalUs / 1000, top };
}
