import { constants, createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { ArchiveFormatSchema, type Checkpoint } from '../domain/checkpoint.js';
import { ErrorCode } from '../domain/errors/error-code.js';
import {
  amended,
  compressOption,
  formatOption,
  formatted,
  pick,
  pidOf,
  positiveInt,
  seg,
  usage,
  writeAtomically,
  type CommandContext,
  type Formatted,
} from './cli-support.js';
import { CliError, type CryoClient } from './cryo-client.js';
import { listTables } from './list-tables.js';
import { Option } from 'commander';
import { apiPaths } from '../api-client/api-paths.js';

/** `cryo checkpoint`, `checkpoints`/`ls`, `restore`, `rm`, `export` and `import`. */
export function addCheckpointCommands({ program, out, run }: CommandContext): void {
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
    .option('--incremental', "store only what changed since the container's latest checkpoint")
    .option('--full-every <n>', 'with --incremental: a full checkpoint every N (default 24)', positiveInt)
    .option('--parent <checkpoint>', 'an incremental checkpoint on this one')
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
          ...pick(o, ['includeVolumes', 'force', 'application', 'parent']),
          ...(o.ghostLimit !== undefined ? { ghostLimitBytes: o.ghostLimit } : {}),
          ...(o.fullEvery !== undefined
            ? { incremental: { fullEvery: o.fullEvery } }
            : o.incremental
              ? { incremental: true }
              : {}),
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
            `${apiPaths.checkpoints}${o.container ? `?container=${encodeURIComponent(o.container)}` : ''}`,
          ),
          listTables.checkpoints,
        ),
      ),
    );

  program
    .command('restore')
    .description(
      'restore a checkpoint into its stopped container, or into a new one (--name); a registry reference is pulled first',
    )
    .argument('[checkpoint]', 'checkpoint id, or REGISTRY/REPOSITORY[:TAG] to pull (none with --import)')
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
          // A reference names its registry ("host.example/repo", "localhost:5000/repo"); an id never has a "/".
          if (!id.includes('/')) return client.json('POST', apiPaths.restore(id), body);
          const pulled = await client.json<Checkpoint>('POST', apiPaths.pull, { reference: id });
          return client.json('POST', apiPaths.restore(pulled.id), body);
        }
        if (id) throw usage('give a checkpoint id or --import <file>, not both');
        const imported = await importFrom(client, o.import);
        return client.json('POST', apiPaths.restore(imported.id), body).catch((err: unknown) => {
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
        for (const id of ids) await client.json('DELETE', apiPaths.checkpoint(id));
      }),
    );

  program
    .command('export')
    .description('write a checkpoint as one archive (podman container checkpoint --export)')
    .argument('<checkpoint>', 'checkpoint id')
    .requiredOption('-o, --output <file>', 'the archive file ("-": standard output)')
    .addOption(compressOption())
    .addOption(
      new Option('--format <format>', "cryo's archive, or one for podman container restore --import")
        .choices(ArchiveFormatSchema.options)
        .default('cryo'),
    )
    .action(
      run(async (client, id: string, o: { output: string; compress: string; format: string }) => {
        await exportTo(client, id, o.output, o.compress, o.format);
      }),
    );

  program
    .command('import')
    .description('import an archive as a checkpoint (gzip and zstd are detected)')
    .argument('<file>', 'the archive ("-": standard input)')
    .action(run(async (client, file: string) => importFrom(client, file)));

  async function exportTo(
    client: CryoClient,
    id: string,
    output: string,
    compress: string,
    format?: string,
  ): Promise<void> {
    const archive = await client.download(apiPaths.archive(id, compress, format));
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
      apiPaths.checkpoints,
      file === '-' ? process.stdin : createReadStream(file),
      'application/x-tar',
    );
  }
}
