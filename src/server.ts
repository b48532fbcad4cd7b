import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { CriuCheckpointEngine } from './adapters/criu/criu-checkpoint-engine.js';
import { TarArchiveCodec } from './adapters/archive/tar-archive-codec.js';
import { DockerContainerRuntime } from './adapters/docker/docker-container-runtime.js';
import { OverlayRootfsChanges } from './adapters/docker/overlay-rootfs-changes.js';
import { FsImageStore } from './adapters/store/fs-image-store.js';
import { openDatabase } from './adapters/store/database.js';
import { SqliteCheckpointCatalog } from './adapters/store/sqlite-checkpoint-catalog.js';
import { SqliteScheduleStore } from './adapters/store/sqlite-schedule-store.js';
import { CronerCron } from './adapters/cron/croner-cron.js';
import { HttpPeerAgent } from './adapters/peer/http-peer-agent.js';
import { loadOrCreateToken } from './adapters/store/token-file.js';
import type { Config } from './config.js';
import { buildApp } from './http/app.js';
import { ArchiveService } from './services/archive-service.js';
import { CheckpointService } from './services/checkpoint-service.js';
import { systemClock } from './services/clock.js';
import { HealthService } from './services/health-service.js';
import { HostService } from './services/host-service.js';
import { MigrationService } from './services/migration-service.js';
import { ScheduleService } from './services/schedule-service.js';

export const CATALOG_FILE = 'cryo.db';

export interface Server {
  app: FastifyInstance;
  token: string;
  /** The address the server listens on, e.g. http://127.0.0.1:7070. */
  url: string;
  close(): Promise<void>;
}

/** Wires the adapters into the services and the HTTP app, and starts listening. */
export async function startServer(config: Config): Promise<Server> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const token = config.token ?? (await loadOrCreateToken(config.dataDir));
  const db = openDatabase(path.join(config.dataDir, CATALOG_FILE));
  const catalog = new SqliteCheckpointCatalog(db);
  const store = new FsImageStore(config.dataDir);
  await store.init();
  const runtime = new DockerContainerRuntime({
    socketPath: config.dockerSocket,
    execRoot: config.dockerExecRoot,
    ...(config.containerdSocket ? { containerdSocket: config.containerdSocket } : {}),
  });
  const rootfs = new OverlayRootfsChanges(config.dockerSocket);
  const engine = new CriuCheckpointEngine({ binary: config.criuBinary });
  const checkpoints = new CheckpointService({ runtime, engine, catalog, store, rootfs, clock: systemClock });
  const archives = new ArchiveService({
    checkpoints,
    catalog,
    store,
    codec: new TarArchiveCodec(),
    clock: systemClock,
    maxImportBytes: config.maxImportBytes,
  });
  const schedules = new ScheduleService({
    store: new SqliteScheduleStore(db),
    checkpoints,
    runtime,
    cron: new CronerCron(),
    clock: systemClock,
    catchUpGraceMs: config.scheduleGraceMs,
  });
  const migrations = new MigrationService({
    runtime,
    engine,
    checkpoints,
    archives,
    connect: (url, peerToken) => new HttpPeerAgent(url, peerToken),
    clock: systemClock,
    retentionMs: config.migrationRetentionMs,
  });
  const host = new HostService(runtime, engine, config.dataDir);
  const health = new HealthService(runtime, engine);
  const app = await buildApp({
    token,
    checkpoints,
    archives,
    schedules,
    migrations,
    host,
    health,
    logLevel: config.logLevel,
  });

  // Half-written checkpoints from a crash are never visible; drop them.
  const swept = await store.sweep(catalog.ids());
  if (swept.length > 0) app.log.warn({ swept }, 'removed incomplete checkpoint directories');

  try {
    await app.listen({ host: config.listen.host, port: config.listen.port });
    await schedules.start();
    migrations.startSweeper();
  } catch (err) {
    await app.close();
    db.close();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.listen.port;
  const listenHost = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
  return {
    app,
    token,
    url: `http://${listenHost}:${port}`,
    close: async () => {
      migrations.stopSweeper();
      await schedules.stop();
      await app.close();
      db.close();
    },
  };
}
