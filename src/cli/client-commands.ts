import type { Command } from 'commander';
import { addCheckpointCommands } from './checkpoint-commands.js';
import { commandContext, DEFAULT_URL, type CliOutput } from './cli-support.js';
import { addMigrationCommands } from './migration-commands.js';
import { addProcessCommands } from './process-commands.js';
import { addScheduleCommands } from './schedule-commands.js';
import { addRegistryCommands } from './registry-commands.js';

export { reportCliError, type CliOutput } from './cli-support.js';

/**
 * The client commands (`cryo checkpoint`, `cryo restore`, `cryo migrate`, ...) on `program`: each is one call
 * of the REST API, with docker/podman-style flags, printing the API's JSON answer; the list commands print a
 * table unless given `--format json`. One file per command group.
 */
export function addClientCommands(program: Command, out: CliOutput = process): void {
  program
    .option('--url <url>', `cryo's API (CRYO_URL, default ${DEFAULT_URL})`)
    .option('--token <token>', "the API token (CRYO_TOKEN, else the one in cryo's data directory)");
  const ctx = commandContext(program, out);
  addCheckpointCommands(ctx);
  addMigrationCommands(ctx);
  addProcessCommands(ctx);
  addScheduleCommands(ctx);
  addRegistryCommands(ctx);
}
