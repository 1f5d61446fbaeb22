import type { Command } from 'commander';

/** `integ policy check` and `integ policy explain PATH`: the policy as integ will read it. */
export function registerPolicy(program: Command): void {
  const policy = program
    .command('policy')
    .summary('validate the policy, or say which rule governs a path')
    .description(
      'work with the policy as integ reads it: --policy FILE, else $INTEG_POLICY, else the configured policy\n' +
        '(/etc/integ/integ.yml, or the embedded default) extended by the policy.d/*.yml drop-ins',
    );
  policy.exitOverride();
  policy
    .command('check')
    .summary('validate the configuration, the policy and its drop-ins')
    .option('--policy <file>', 'policy YAML (default: $INTEG_POLICY, else the configured one with its drop-ins)')
    .option('--format <fmt>', 'text or json', 'text')
    .addHelpText(
      'after',
      `
Examples:
  $ sudo integ policy check
  $ integ policy check --policy baselines/webserver.yml

Exit: 0 valid; 65 invalid (file, line and what was expected are named); 66 a file is missing.`,
    )
    .action(async (flags: { policy?: string; format?: string }) => {
      const { parseFormat } = await import('./run-context.js');
      const format = parseFormat(flags.format);
      const { loadPolicy } = await import('../app/common.js');
      const { loadConfig } = await import('../config/config.js');
      const cfg = loadConfig(process.env);
      const p = loadPolicy(flags.policy, process.env);
      const dropIns = !flags.policy && process.env.INTEG_POLICY_D ? (await import('../config/policy-d.js')).dropInFiles(process.env.INTEG_POLICY_D) : [];
      if (format === 'json') {
        process.stdout.write(
          `${JSON.stringify(
            {
              schema: 'integ.policy-check/1',
              valid: true,
              config: cfg.found ? cfg.file : null,
              policy: p.source,
              drop_ins: dropIns,
              hash: p.hash,
              exclude: p.exclude,
              rules: p.rules.map((r) => ({ name: r.name, severity: r.severity, paths: r.paths, exclude: r.exclude, check: r.check })),
            },
            null,
            2,
          )}\n`,
        );
        return;
      }
      const out = [
        `configuration: ${cfg.found ? cfg.file : `none (${cfg.file} does not exist; built-in defaults)`}`,
        `policy: ${p.source}`,
        ...(dropIns.length ? [`drop-ins: ${dropIns.join(', ')}`] : []),
        `hash: ${p.hash.join(', ')}${p.exclude.length ? `; global exclude: ${p.exclude.join(', ')}` : ''}`,
        `rules (${p.rules.length}, the last matching rule governs a path):`,
        ...p.rules.map((r, i) => `  #${i + 1} ${r.name} [${r.severity}] ${r.paths.join(' ')}${r.exclude.length ? ` (exclude ${r.exclude.join(' ')})` : ''}`),
        'OK: the policy is valid',
      ];
      process.stdout.write(`${out.join('\n')}\n`);
    });
  policy
    .command('explain')
    .summary('say which rule governs a path, and why')
    .argument('<path>', 'an absolute path as the policy names it (no --root prefix)')
    .option('--policy <file>', 'policy YAML (default: $INTEG_POLICY, else the configured one with its drop-ins)')
    .option('--format <fmt>', 'text or json', 'text')
    .addHelpText(
      'after',
      `
Examples:
  $ integ policy explain /etc/ssh/sshd_config
  $ integ policy explain /var/log/syslog --policy baselines/webserver.yml

Exit: 0 a rule governs the path; 1 no rule covers it (out of scope); 64 not an absolute path; 65/66 policy problems.`,
    )
    .action(async (p: string, flags: { policy?: string; format?: string }) => {
      const { parseFormat } = await import('./run-context.js');
      const format = parseFormat(flags.format);
      const { UsageError } = await import('../util/errors.js');
      if (!p.startsWith('/'))
        throw new UsageError(
          `"${p}" is a relative path; the policy names absolute paths (did you mean "${(await import('node:path')).resolve(p)}"? With --root DIR, give the path without DIR)`,
        );
      const norm = p.length > 1 ? p.replace(/\/+$/, '') : p;
      const { loadPolicy } = await import('../app/common.js');
      const pol = loadPolicy(flags.policy, process.env);
      const { explainPath } = await import('../core/explain.js');
      const e = explainPath(pol, norm);
      if (format === 'json') {
        process.stdout.write(
          `${JSON.stringify(
            {
              schema: 'integ.policy-explain/1',
              path: norm,
              policy: pol.source,
              covered: e.rule !== null,
              rule: e.rule ? { name: e.rule.name, severity: e.rule.severity, check: e.rule.check } : null,
              global_exclude: e.globalExclude,
              reason: e.reason,
              rules: e.verdicts.map((v) => ({ name: v.rule.name, matched: v.matched, excluded_by: v.excludedBy })),
            },
            null,
            2,
          )}\n`,
        );
      } else {
        const out = [`${norm}: ${e.reason}`];
        if (e.rule) out.push(`  severity ${e.rule.severity}; checks ${e.rule.check.join(', ')}`);
        out.push(`  policy: ${pol.source}`);
        for (const v of e.verdicts)
          out.push(
            `  #${v.index + 1} ${v.rule.name}: ${v.matched ? `paths match "${v.matched}"${v.excludedBy ? `, excluded by "${v.excludedBy}"` : ''}` : 'paths do not match'}`,
          );
        process.stdout.write(`${out.join('\n')}\n`);
      }
      process.exitCode = e.rule ? 0 : 1;
    });
}
