import type { Schedule, ScheduleRun } from '../domain/schedule.js';
import {
  formatOption,
  formatted,
  pick,
  positiveInt,
  seg,
  type CommandContext,
  type Formatted,
} from './cli-support.js';
import { listTables } from './list-tables.js';
import { Option } from 'commander';

/** `cryo schedule create|ls|run|runs|rm`. */
export function addScheduleCommands({ program, run }: CommandContext): void {
  const schedule = program.command('schedule').description('cron-scheduled snapshots and their retention');
  schedule
    .command('create')
    .description('snapshot a container on a cron schedule')
    .argument('<container>', 'name or id')
    .requiredOption('--cron <expr>', '5 fields (6 with seconds first), or @hourly, @daily, @weekly, @monthly')
    .option('--timezone <tz>', 'IANA time zone of the cron expression')
    .option('--stop', 'stop the container for each snapshot (default: it keeps running)')
    .option('--keep-last <n>', 'keep the newest N', positiveInt)
    .option('--keep-hourly <n>', 'keep the newest of each of the last N hours', positiveInt)
    .option('--keep-daily <n>', 'keep the newest of each of the last N days', positiveInt)
    .option('--keep-weekly <n>', 'keep the newest of each of the last N weeks', positiveInt)
    .option('--keep-monthly <n>', 'keep the newest of each of the last N months', positiveInt)
    .addOption(
      new Option('--application [what]', 'operator cuts through the sidecar too ("only": nothing else)')
        .choices(['only'])
        .preset(true),
    )
    .option('--push <repository>', 'push every snapshot to REGISTRY/REPOSITORY, its name as the tag')
    .option('--full', 'every snapshot a full checkpoint (default: incremental, a full one every 24)')
    .option('--full-every <n>', 'a full snapshot every N, the others incremental', positiveInt)
    .option('--disabled', 'create it disabled')
    .action(
      run(async (client, container: string, o: Record<string, unknown>) => {
        const retain = Object.fromEntries(
          ['last', 'hourly', 'daily', 'weekly', 'monthly']
            .map((k) => [k, o[`keep${k[0]!.toUpperCase()}${k.slice(1)}`]])
            .filter(([, v]) => v !== undefined),
        );
        return client.json('POST', '/v1/schedules', {
          container,
          ...pick(o, ['cron', 'timezone', 'application', 'push']),
          ...(o.stop ? { leaveRunning: false } : {}),
          ...(o.disabled ? { enabled: false } : {}),
          ...(o.full ? { incremental: false } : {}),
          ...(o.fullEvery !== undefined ? { incremental: { fullEvery: o.fullEvery } } : {}),
          retain,
        });
      }),
    );
  schedule
    .command('ls')
    .description('list schedules')
    .addOption(formatOption())
    .action(
      run(async (client, o: Formatted) =>
        formatted(
          o,
          await client.json<{ schedules: Schedule[] }>('GET', '/v1/schedules'),
          listTables.schedules,
        ),
      ),
    );
  schedule
    .command('runs')
    .description("a schedule's runs: outcome, checkpoint, frozen time, error")
    .argument('<schedule>', 'schedule id')
    .addOption(formatOption())
    .action(
      run(async (client, id: string, o: Formatted) =>
        formatted(
          o,
          await client.json<{ runs: ScheduleRun[] }>('GET', `/v1/schedules/${seg(id)}/runs`),
          listTables.runs,
        ),
      ),
    );
  schedule
    .command('run')
    .description('take a snapshot now, outside the schedule')
    .argument('<schedule>', 'schedule id')
    .action(run(async (client, id: string) => client.json('POST', `/v1/schedules/${seg(id)}/run`)));
  schedule
    .command('rm')
    .description('delete a schedule (its checkpoints stay, unless --delete-checkpoints)')
    .argument('<schedule>', 'schedule id')
    .option('--delete-checkpoints', 'delete its checkpoints too')
    .action(
      run(async (client, id: string, o: { deleteCheckpoints?: boolean }) => {
        await client.json(
          'DELETE',
          `/v1/schedules/${seg(id)}${o.deleteCheckpoints ? '?deleteCheckpoints=true' : ''}`,
        );
      }),
    );
}
