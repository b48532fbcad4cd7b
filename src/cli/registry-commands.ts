import { ArchiveFormatSchema, type Checkpoint } from '../domain/checkpoint.js';
import { Option } from 'commander';
import type { PushResult } from '../domain/registry.js';
import { apiPaths } from '../api-client/api-paths.js';
import type { CommandContext } from './cli-support.js';

/** `cryo push` and `cryo pull`, as `docker push`, `podman push` and `skopeo copy` do for images. */
export function addRegistryCommands({ program, run }: CommandContext): void {
  program
    .command('push')
    .description('push a checkpoint to an OCI registry (blobs the registry has are not sent again)')
    .argument('<checkpoint>', 'checkpoint id')
    .argument('<reference>', 'REGISTRY/REPOSITORY[:TAG] (the tag defaults to latest)')
    .addOption(
      new Option(
        '--format <format>',
        "cryo's artifact, or a Podman checkpoint image (podman container restore IMAGE)",
      )
        .choices(ArchiveFormatSchema.options)
        .default('cryo'),
    )
    .action(
      run(async (client, id: string, reference: string, o: { format: string }) =>
        client.json<PushResult>('POST', apiPaths.push(id), { reference, format: o.format }),
      ),
    );

  program
    .command('pull')
    .description(
      "pull a checkpoint from an OCI registry into this host's catalog, then restore it as any other",
    )
    .argument('<reference>', 'REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST]')
    .action(
      run(async (client, reference: string) => client.json<Checkpoint>('POST', apiPaths.pull, { reference })),
    );
}
