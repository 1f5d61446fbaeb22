import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integ, tmpdir } from '../helpers/cli.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium) console.log(`report.test: skipping the rendering test: ${CHROMIUM} is not installed (Debian package "chromium")`);

let dir: string;
let db: string;
let html: string;
let md: string;
let changed: string;
let planted: string;
let bundleHashes: string[] = [];
const NOTE1 = 'Host isolated from the network by the NOC at 03:20';
const NOTE2 = 'Reported to JPCERT/CC, ticket 2026-42';

beforeAll(() => {
  dir = tmpdir();
  const tree = path.join(dir, 'etc');
  fs.mkdirSync(tree);
  db = path.join(dir, 's.db');
  const ev = path.join(dir, 'ev');
  const policy = path.join(dir, 'p.yml');
  fs.writeFileSync(policy, `version: 1\nrules:\n  - name: config\n    severity: critical\n    paths: ["${tree}/**"]\n    keep_content: true\n`);
  changed = path.join(tree, 'sshd_config');
  fs.writeFileSync(changed, 'PermitRootLogin no\n');
  expect(integ(['baseline', '--db', db, '--policy', policy]).code).toBe(0);
  fs.writeFileSync(changed, 'PermitRootLogin yes\n');
  // A hostile file name: must show as text, never as markup that loads something.
  planted = path.join(tree, '<img src="http:__127.0.0.1:9_x.png" onerror="alert(1)">');
  fs.writeFileSync(planted, 'x');
  expect(integ(['check', '--db', db, '--policy', policy, '--out', ev, '--jobs', '1']).code & 5).toBe(5);
  expect(integ(['note', '--db', db, NOTE1]).code).toBe(0);
  expect(integ(['restore', changed, '--db', db, '--policy', policy, '--out', ev, '--note', 'revert sshd_config']).code).toBe(0);
  expect(integ(['note', '--db', db, NOTE2]).code).toBe(0);
  const t = JSON.parse(integ(['timeline', '--db', db, '--format', 'json']).stdout);
  bundleHashes = t.events.filter((e: { source: string }) => e.source === 'evidence').map((e: { sha256: string }) => e.sha256);
  expect(bundleHashes).toHaveLength(2);
  html = path.join(dir, 'report.html');
  md = path.join(dir, 'report.md');
  const r = integ(['report', '--db', db, '--out', html]);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain(`report written: ${html} (html`);
  expect(integ(['report', '--db', db, '--out', md]).code).toBe(0);
}, 180_000);

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('integ report', () => {
  it('HTML is self-contained: inline CSS, a CSP forbidding everything else, no script, no link, no URL', () => {
    const s = fs.readFileSync(html, 'utf8');
    expect(fs.statSync(html).mode & 0o777).toBe(0o600);
    expect(s).toMatch(/^<!DOCTYPE html>/);
    expect(s).toContain(`content="default-src 'none'; style-src 'unsafe-inline'"`);
    expect(s).not.toMatch(/<script|<link|<img|<iframe|@import|url\(/i);
    expect(s).toContain('@media print');
    // management summary comes first
    const order = ['Summary for management', 'Timeline (UTC)', 'Findings', 'Evidence', 'Notes', 'Post-mortem', 'Appendix: fields for a report to a CSIRT'].map(
      (x) => s.indexOf(`<h2>${x}`),
    );
    expect(order.every((i) => i > 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(s).toContain('&lt;img src=&quot;http:__127.0.0.1:9_x.png&quot;');
  });

  it('Markdown has the same sections, notes, paths and hashes', () => {
    const s = fs.readFileSync(md, 'utf8');
    for (const x of ['## Summary for management', '## Timeline (UTC)', '## Findings', '## Evidence', '## Notes', 'JPCERT/CC', NOTE1, NOTE2, ...bundleHashes])
      expect(s).toContain(x);
    expect(s).toContain(changed);
    expect(s).toContain('1 file restored to the known-good version');
    expect(s).toContain('| From detection to the first clean check | not clean yet |'); // the planted file is still there
  });

  it('bad flags: 64; no store: 66; unwritable output: 73', () => {
    expect(integ(['report', '--db', db, '--format', 'pdf']).code).toBe(64);
    expect(integ(['report', '--db', path.join(dir, 'nope.db')]).code).toBe(66);
    const r = integ(['report', '--db', db, '--out', path.join(dir, 'no', 'such', 'dir', 'r.html')]);
    expect(r.code).toBe(73);
    expect(r.stderr).toMatch(/^integ: cannot write the report/);
  });

  it.skipIf(!haveChromium)(
    'renders in headless Chromium with the notes, changed paths and bundle hashes, requesting nothing from the network',
    async () => {
      const { chromium } = await import('playwright-core');
      const userData = fs.mkdtempSync(path.join(dir, 'chromium-'));
      const context = await chromium.launchPersistentContext(userData, {
        executablePath: CHROMIUM,
        headless: true,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
      try {
        const requests: string[] = [];
        context.on('request', (r) => requests.push(r.url()));
        const page = await context.newPage();
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(e.message));
        page.on('dialog', (d) => {
          errors.push(`dialog: ${d.message()}`);
          void d.dismiss();
        });
        const url = `file://${html}`;
        await page.goto(url, { waitUntil: 'load' });
        const text = (await page.textContent('body')) ?? '';
        for (const x of [NOTE1, NOTE2, changed, planted, ...bundleHashes]) expect(text).toContain(x);
        expect(await page.title()).toMatch(/^Incident report: /);
        const first = await page.locator('main section').first().getAttribute('id');
        expect(first).toBe('summary');
        expect(await page.locator('img, script').count()).toBe(0);
        // print: navigation hidden, and a PDF comes out
        await page.emulateMedia({ media: 'print' });
        expect(await page.locator('nav').isVisible()).toBe(false);
        const pdf = await page.pdf({ format: 'A4' });
        expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
        expect(requests).toEqual([url]);
        expect(errors).toEqual([]);
      } finally {
        await context.close();
      }
    },
    120_000,
  );
});
