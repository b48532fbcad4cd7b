#!/usr/bin/env -S node --max-semi-space-size=2
import { Command } from 'commander';
import { addClientCommands, reportCliError } from './cli/client-commands.js';
import { CRYO_VERSION } from './version.js';

const program = new Command()
  .name('cryo')
  .description('Checkpoint/restore orchestrator for Linux containers')
  .version(CRYO_VERSION);

program
  .command('serve', { isDefault: true })
  .description('run the cryo API service')
  .option('--listen <host:port>', 'address to listen on (CRYO_LISTEN, default 127.0.0.1:7070)')
  .option('--data-dir <dir>', 'data directory (CRYO_DATA_DIR, default /var/lib/cryo)')
  .action(async (opts: { listen?: string; dataDir?: string }) => {
    // The server (fastify, dockerode, SQLite, zod) loads only here: client commands start in tens of ms.
    const [{ ZodError }, { loadConfig }, { startServer }, { DataDirInUseError }] = await Promise.all([
      import('zod'),
      import('./config.js'),
      import('./server.js'),
      import('./adapters/store/data-dir-lock.js'),
    ]);
    let config;
    try {
      config = loadConfig(process.env, { listen: opts.listen, dataDir: opts.dataDir });
    } catch (err) {
      if (err instanceof ZodError) {
        console.error(`cryo: invalid configuration: ${err.issues.map((i) => i.message).join('; ')}`);
        process.exit(2);
      }
      throw err;
    }
    let server;
    try {
      server = await startServer(config);
    } catch (err) {
      if (err instanceof DataDirInUseError) {
        console.error(`cryo: ${err.message}`);
        process.exit(1);
      }
      throw err;
    }
    server.app.log.info(`cryo ${CRYO_VERSION} listening on ${server.url}, data in ${config.dataDir}`);
    const stop = (signal: string) => {
      server.app.log.info(`${signal}: shutting down`);
      server.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });

addClientCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (!reportCliError(err)) throw err;
}
