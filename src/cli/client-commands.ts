import { constants, createReadStream, createWriteStream } from 'node:fs';
import { access, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_DATA_DIR, DEFAULT_LISTEN, TOKEN_FILE } from '../defaults.js';
import type { Checkpoint } from '../domain/checkpoint.js';
import type { Migration } from '../domain/migration.js';
import type { Schedule, ScheduleRun } from '../domain/schedule.js';
import { CliError, CryoClient } from './cryo-client.js';
import { listTables } from './list-tables.js';
import { ErrorCode } from '../domain/errors/index.js';

const DEFAULT_URL = `http://${DEFAULT_LISTEN.host}:${DEFAULT_LISTEN.port}`;
const MIGRATION_POLL_MS = 200;

interface GlobalOptions {
  url?: string;
  token?: string;
}

/** Where a command writes: results (JSON, or a list's table) to stdout, progress and errors to stderr. */
export interface CliOutput {
  stdout: Writable;
  stderr: Writable;
}

/**
 * The client commands (`cryo checkpoint`, `cryo restore`, `cryo migrate`, ...) on `program`: each is one call
 * of the REST API, with docker/podman-style flags, printing the API's JSON answer; the list commands print a
 * table unless given `--format json`.
 */
export function addClientCommands(program: Command, out: CliOutput = process): void {
  program
    .option('--url <url>', `cryo's API (CRYO_URL, default ${DEFAULT_URL})`)
    .option('--token <token>', "the API token (CRYO_TOKEN, else the one in cryo's data directory)");

  const run =
    <A extends unknown[]>(fn: (client: CryoClient, ...args: A) => Promise<unknown>) =>
    async (...args: A) => {
      const client = new CryoClient(...(await endpoint(program.opts<GlobalOptions>())));
      const result = await fn(client, ...args);
      if (result instanceof Printed) out.stdout.write(result.text);
      else if (result !== undefined) out.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    };

  program
    .command('checkpoint')
    .description(
      'checkpoint a running container (docker checkpoint create, podman container checkpoint), or with --pid a process tree (criu dump -t)',
    )
    .argument('<target>', 'container name or id, or a pid with --pid')
    .option('--pid', 'the target is a process id: dump its tree with CRIU')
    .option('--shell-job', 'with --pid: the tree was started from a shell (CRIU --shell-job)')
    .option('--name <name>', 'checkpoint name')
    .option('--leave-running', 'keep the container running after the dump')
    .option('--tcp-established', 'keep established TCP connections (CRIU --tcp-established)')
    .option('--file-locks', 'dump file locks (CRIU --file-locks)')
    .option('--external-unix-sockets', 'dump unix sockets with a peer outside (CRIU --ext-unix-sk)')
    .option('--ghost-limit <bytes>', 'largest deleted-but-open file kept in the image', positiveInt)
    .option('--include-volumes', "include named volumes' contents")
    .option('--force', 'skip the pre-flight')
    .option(
      '--export <file>',
      'also write the checkpoint as one archive (podman container checkpoint --export)',
    )
    .addOption(compressOption())
    .addOption(
      new Option(
        '--application [what]',
        'take an operator cut through the sidecar too ("only": nothing else)',
      )
        .choices(['only'])
        .preset(true),
    )
    .action(
      run(async (client, target: string, o: Record<string, unknown>) => {
        // Every flag given goes to the API, whose schema refuses what does not apply (--include-volumes with --pid).
        const body = {
          ...pick(o, [
            'name',
            'leaveRunning',
            'tcpEstablished',
            'fileLocks',
            'externalUnixSockets',
            'shellJob',
          ]),
          ...pick(o, ['includeVolumes', 'force', 'application']),
          ...(o.ghostLimit !== undefined ? { ghostLimitBytes: o.ghostLimit } : {}),
        };
        if (o.pid && o.export !== undefined) {
          throw new CliError(
            ErrorCode.VALIDATION_FAILED,
            '--export applies to a container checkpoint',
            'a process tree restores only on the host that dumped it',
          );
        }
        const url = o.pid
          ? `/v1/processes/${pidOf(target)}/checkpoints`
          : `/v1/containers/${seg(target)}/checkpoints`;
        const checkpoint = await client.json<Checkpoint>('POST', url, body);
        if (typeof o.export !== 'string') return checkpoint;
        out.stdout.write(`${JSON.stringify(checkpoint, null, 2)}\n`);
        await exportTo(client, checkpoint.id, o.export, String(o.compress)).catch((err: unknown) => {
          // The checkpoint is made and kept; only the archive is missing.
          throw amended(err, (e) => ({
            message: `checkpoint ${checkpoint.id} was made, but its export failed: ${e.message}`,
            hint: `run: cryo export ${checkpoint.id} -o ${o.export as string}`,
          }));
        });
        return undefined;
      }),
    );

  program
    .command('checkpoints')
    .alias('ls')
    .description('list checkpoints')
    .option('--container <container>', "only this container's")
    .addOption(formatOption())
    .action(
      run(async (client, o: { container?: string } & Formatted) =>
        formatted(
          o,
          await client.json<{ checkpoints: Checkpoint[] }>(
            'GET',
            `/v1/checkpoints${o.container ? `?container=${encodeURIComponent(o.container)}` : ''}`,
          ),
          listTables.checkpoints,
        ),
      ),
    );

  program
    .command('restore')
    .description('restore a checkpoint into its stopped container, or into a new one (--name)')
    .argument('[checkpoint]', 'checkpoint id (none with --import)')
    .option(
      '--import <file>',
      'import this archive first and restore it (podman container restore --import; "-": standard input)',
    )
    .option('--name <name>', 'restore into a new container with this name')
    .addOption(new Option('--ports <ports>', 'host ports of a new container').choices(['free', 'same']))
    .addOption(
      new Option('--mode <mode>', 'CRIU image, operator state, or either').choices([
        'process',
        'application',
        'auto',
      ]),
    )
    .option('--env <NAME=value...>', 'environment of a new container (application restores)')
    .action(
      run(async (client, id: string | undefined, o: Record<string, unknown>) => {
        const body = pick(o, ['name', 'ports', 'mode', 'env']);
        if (typeof o.import !== 'string') {
          if (!id) throw usage('give a checkpoint id, or --import <file>');
          return client.json('POST', `/v1/checkpoints/${seg(id)}/restore`, body);
        }
        if (id) throw usage('give a checkpoint id or --import <file>, not both');
        const imported = await importFrom(client, o.import);
        return client
          .json('POST', `/v1/checkpoints/${seg(imported.id)}/restore`, body)
          .catch((err: unknown) => {
            // The archive is imported and kept: a second try needs no second upload.
            throw amended(err, (e) => ({
              hint: `${e.hint ? `${e.hint}; ` : ''}the archive is imported as checkpoint ${imported.id}: cryo restore ${imported.id} ..., or cryo rm ${imported.id}`,
            }));
          });
      }),
    );

  program
    .command('rm')
    .description('delete a checkpoint')
    .argument('<checkpoint...>', 'checkpoint ids')
    .action(
      run(async (client, ids: string[]) => {
        for (const id of ids) await client.json('DELETE', `/v1/checkpoints/${seg(id)}`);
      }),
    );

  program
    .command('export')
    .description('write a checkpoint as one archive (podman container checkpoint --export)')
    .argument('<checkpoint>', 'checkpoint id')
    .requiredOption('-o, --output <file>', 'the archive file ("-": standard output)')
    .addOption(compressOption())
    .action(
      run(async (client, id: string, o: { output: string; compress: string }) => {
        await exportTo(client, id, o.output, o.compress);
      }),
    );

  program
    .command('import')
    .description('import an archive as a checkpoint (gzip and zstd are detected)')
    .argument('<file>', 'the archive ("-": standard input)')
    .action(run(async (client, file: string) => importFrom(client, file)));

  program
    .command('migrate')
    .description('move a running container to another cryo agent, and wait for the outcome')
    .argument('<container>', 'name or id')
    .requiredOption('--target <url>', 'the target agent, e.g. http://host-b:7070')
    .requiredOption('--target-token <token>', "the target's API token")
    .option('--name <name>', 'the container name on the target')
    .option('--keep-source', 'keep the source container, stopped')
    .option('--no-wait', 'print the migration as started, and do not wait')
    .action(
      run(async (client, container: string, o: Record<string, unknown>) => {
        let m = await client.json<Migration>('POST', `/v1/containers/${seg(container)}/migrations`, {
          target: o.target,
          targetToken: o.targetToken,
          ...pick(o, ['name', 'keepSource']),
        });
        if (o.wait === false) return m;
        let reported = 0;
        for (;;) {
          for (const p of m.phases.slice(reported)) {
            if (p.status === 'running') break;
            const how = p.status === 'skipped' ? ` (${p.detail})` : ` in ${p.ms} ms`;
            out.stderr.write(`${p.name}: ${p.status}${how}\n`);
            reported++;
          }
          if (m.status !== 'running') break;
          await new Promise((r) => setTimeout(r, MIGRATION_POLL_MS));
          m = await client.json<Migration>('GET', `/v1/migrations/${m.id}`);
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

  program
    .command('operators')
    .description('the stream job in a container: its operators, key groups and last operator checkpoint')
    .argument('<container>', 'name or id')
    .action(
      run(async (client, container: string) =>
        client.json('GET', `/v1/containers/${seg(container)}/operators`),
      ),
    );

  async function exportTo(client: CryoClient, id: string, output: string, compress: string): Promise<void> {
    const archive = await client.download(`/v1/checkpoints/${seg(id)}/archive?compress=${compress}`);
    if (output === '-') await pipeline(archive, out.stdout, { end: false });
    else await writeAtomically(archive, output);
  }

  async function importFrom(client: CryoClient, file: string): Promise<Checkpoint> {
    if (file !== '-') {
      await access(file, constants.R_OK).catch((err: NodeJS.ErrnoException) => {
        throw new CliError('FILE_UNREADABLE', `cannot read ${file}: ${err.code ?? err.message}`);
      });
    }
    return client.upload<Checkpoint>(
      '/v1/checkpoints',
      file === '-' ? process.stdin : createReadStream(file),
      'application/x-tar',
    );
  }

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
          ...pick(o, ['cron', 'timezone', 'application']),
          ...(o.stop ? { leaveRunning: false } : {}),
          ...(o.disabled ? { enabled: false } : {}),
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

  program
    .command('inspect')
    .description('what a process tree holds, from /proc')
    .argument('<pid>', 'process id', positiveInt)
    .action(run(async (client, pid: number) => client.json('GET', `/v1/processes/${pid}`)));

  program
    .command('preflight')
    .description('whether CRIU can dump a container (or, with --pid, a process tree), and why not')
    .argument('<target>', 'container name or id, or a pid with --pid')
    .option('--pid', 'the target is a process id')
    .option('--tcp-established', 'established TCP connections will be kept')
    .option('--file-locks', 'file locks will be dumped')
    .option('--external-unix-sockets', 'unix sockets with a peer outside will be dumped')
    .action(
      run(async (client, target: string, o: Record<string, unknown>) => {
        const flags = Object.keys(pick(o, ['tcpEstablished', 'fileLocks', 'externalUnixSockets']));
        const query = flags.length > 0 ? `?${flags.map((f) => `${f}=true`).join('&')}` : '';
        return client.json(
          'GET',
          o.pid
            ? `/v1/processes/${pidOf(target)}/preflight${query}`
            : `/v1/containers/${seg(target)}/preflight${query}`,
        );
      }),
    );
}

/** Reports a failed client command on stderr, the API's code, message and hint, and sets the exit code; false for anything else. */
export function reportCliError(err: unknown, out: CliOutput = process): boolean {
  // The reader went away (`cryo export ... -o - | head`): stop quietly, as a command killed by SIGPIPE would.
  if ((err as NodeJS.ErrnoException).code === 'EPIPE') {
    process.exitCode = 141;
    return true;
  }
  if (!(err instanceof CliError)) return false;
  out.stderr.write(`cryo: ${err.code}: ${err.message}\n${err.hint ? `hint: ${err.hint}\n` : ''}`);
  if (err.details !== undefined) out.stderr.write(`details: ${JSON.stringify(err.details, null, 2)}\n`);
  process.exitCode = 1;
  return true;
}

async function endpoint(o: GlobalOptions): Promise<[string, string]> {
  const url = (o.url ?? process.env.CRYO_URL ?? DEFAULT_URL).replace(/\/+$/, '');
  let token = o.token ?? process.env.CRYO_TOKEN;
  if (!token) {
    const file = path.join(process.env.CRYO_DATA_DIR ?? DEFAULT_DATA_DIR, TOKEN_FILE);
    token = await readFile(file, 'utf8').then(
      (t) => t.trim(),
      () => {
        throw new CliError(
          'NO_TOKEN',
          `no API token: no --token, no CRYO_TOKEN, and ${file} cannot be read`,
          'run as root on the host where cryo runs, or give --token',
        );
      },
    );
  }
  return [url, token];
}

/** The archive appears under its name only once complete. */
async function writeAtomically(input: Readable, file: string): Promise<void> {
  const partial = `${file}.partial-${process.pid}`;
  try {
    await pipeline(input, createWriteStream(partial, { flags: 'wx', mode: 0o600 }));
    await rename(partial, file);
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  }
}

/** Text a command prints as it is, instead of JSON. */
class Printed {
  constructor(readonly text: string) {}
}

interface Formatted {
  format: 'table' | 'json';
}

/** An API error told in the terms of a command made of several calls; anything else as it is. */
function amended(err: unknown, change: (e: CliError) => { message?: string; hint?: string }): unknown {
  if (!(err instanceof CliError)) return err;
  const { message = err.message, hint = err.hint } = change(err);
  return new CliError(err.code, message, hint, err.details);
}

function compressOption(): Option {
  return new Option('--compress <kind>', 'compression of the archive')
    .choices(['none', 'gzip', 'zstd'])
    .default('none');
}

function usage(message: string): CliError {
  return new CliError(ErrorCode.VALIDATION_FAILED, message, 'see cryo restore --help');
}

function formatOption(): Option {
  return new Option('--format <format>', "table, or json (the API's answer)")
    .choices(['table', 'json'])
    .default('table');
}

function formatted<T>(o: Formatted, value: T, table: (value: T) => string): T | Printed {
  return o.format === 'json' ? value : new Printed(table(value));
}

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
}

/** One path segment: the server validates names and ids; this only keeps them from changing the path. */
function seg(value: string): string {
  return encodeURIComponent(value);
}

/** A target given with --pid, checked where commander cannot (the argument is a name without it). */
function pidOf(target: string): number {
  if (!/^\d+$/.test(target) || Number(target) < 1) {
    throw new CliError(
      ErrorCode.VALIDATION_FAILED,
      `"${target}" is not a pid`,
      'give a positive process id with --pid',
    );
  }
  return Number(target);
}

function positiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('a positive integer');
  return Number(value);
}
