import { describe, expect, it } from 'vitest';
import type { ReportModel } from '../../src/app/report.js';
import type { TimelineEvent } from '../../src/app/timeline.js';
import { REPORT_MAX_ROWS, reportHtml, reportMarkdown } from '../../src/report/incident-report.js';

function model(events: number, note = 'note'): ReportModel {
  const ev = (i: number): TimelineEvent => ({
    ns: BigInt(i) * 1_000_000_000n,
    datetime: new Date(i * 1000).toISOString(),
    timestamp_desc: 'Check alert',
    source: 'check',
    message: `event ${i}`,
    host: 'web1',
    user: 'root',
    path: null,
    generation: 1,
    run: i,
    severity: null,
    sha256: null,
    digest: null,
  });
  return {
    title: 'Incident report: web1',
    generatedAt: '2026-12-01T00:00:00.000Z',
    hosts: ['web1'],
    timeline: {
      events: Array.from({ length: events }, (_, i) => ev(i)),
      since: null,
      until: null,
      generations: [],
      runs: [],
      evidence: [],
      notes: [
        {
          id: 1,
          createdAt: '2026-12-01T00:00:00.000Z',
          user: 'root',
          uid: 0,
          hostname: 'web1',
          text: note,
          prevDigest: null,
          digest: 'blake3:aa',
          signature: null,
          keyId: null,
        },
      ],
      notesHead: 'blake3:aa',
    },
    findings: [],
    summary: { firstAlert: null, earliestChange: null, lastCheck: null, counts: {}, restored: [], accepted: 0, bundles: 0, notes: 1, state: 'no alert' },
    integrity: { generation: 1, digest: 'blake3:bb', signed: false, notesHead: 'blake3:aa' },
  };
}

describe('incident report rendering', () => {
  it('bounds the timeline table and says how many rows are not shown', () => {
    const md = reportMarkdown(model(REPORT_MAX_ROWS + 5));
    expect(md.split('\n').filter((l) => l.startsWith('| 19') || l.startsWith('| 20')).length).toBe(REPORT_MAX_ROWS);
    expect(md).toContain('… 5 more events not shown');
  });
  it('escapes markup in HTML and pipes in Markdown cells', () => {
    const hostile = '<script>fetch("http://203.0.113.9")</script> | x';
    const html = reportHtml(model(1, hostile));
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;fetch(&quot;http://203.0.113.9&quot;)&lt;/script&gt; | x');
    const md = reportMarkdown(model(1, hostile));
    expect(md).toContain('&lt;script&gt;fetch("http://203.0.113.9")&lt;/script&gt; \\| x');
  });
});
