import type { Migration } from '../domain/migration.js';
import { formatOption, formatted, pick, seg, type CommandContext, type Formatted } from './cli-support.js';
import { CliError } from './cryo-client.js';
import { listTables } from './list-tables.js';
import { MigrationProgress } from './migration-progress.js';

const MIGRATION_POLL_MS = 200;

/** `cryo migrate` and `cryo migrations`. */
export function addMigrationCommands({ program, out, run }: CommandContext): void {
  program
    .command('migrate')
    .description('move a running container to another cryo agent, and wait for the outcome')
    .argument('<container>', 'name or id')
    .requiredOption('--target <url>', 'the target agent, e.g. http://host-b:7070')
    .requiredOption('--target-token <token>', "the target's API token")
    .option('--name <name>', 'the container name on the target')
    .option('--keep-source', 'keep the source container, stopped')
    .option(
      '--strategy <strategy>',
      'stop-and-copy (the default), post-copy (the pages follow while it runs there) or auto',
    )
    .option('--no-disk-pre-copy', 'send the files during the downtime too, not before the freeze')
    .option('--no-wait', 'print the migration as started, and do not wait')
    .action(
      run(async (client, container: string, o: Record<string, unknown>) => {
        let m = await client.json<Migration>('POST', `/v1/containers/${seg(container)}/migrations`, {
          target: o.target,
          targetToken: o.targetToken,
          ...pick(o, ['name', 'keepSource', 'strategy', 'diskPreCopy']),
        });
        if (o.wait === false) return m;
        const progress = new MigrationProgress(out.stderr);
        try {
          for (;;) {
            progress.update(m);
            if (m.status !== 'running') break;
            await new Promise((r) => setTimeout(r, MIGRATION_POLL_MS));
            m = await client.json<Migration>('GET', `/v1/migrations/${m.id}`);
          }
        } finally {
          progress.stop();
        }
        if (m.status !== 'succeeded') {
          out.stdout.write(`${JSON.stringify(m, null, 2)}\n`);
          throw new CliError(
            m.error?.code ?? 'MIGRATION_FAILED',
            `migration ${m.id} ended ${m.status}${m.error ? ` in ${m.error.phase}: ${m.error.message}` : ''}`,
          );
        }
        return m;
      }),
    );

  program
    .command('migrations')
    .description('migrations from this host, or one of them')
    .argument('[migration]', 'migration id (shown whole, as JSON)')
    .addOption(formatOption())
    .action(
      run(async (client, id: string | undefined, o: Formatted) =>
        id
          ? client.json('GET', `/v1/migrations/${seg(id)}`)
          : formatted(
              o,
              await client.json<{ migrations: Migration[] }>('GET', '/v1/migrations'),
              listTables.migrations,
            ),
      ),
    );
}
