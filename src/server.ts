import { mkdir } from 'node:fs/promises';
import { registryConnector } from './adapters/registry/registry-connector.js';
import { OcicryptLayerEncryption } from './adapters/ocicrypt/ocicrypt-layer-encryption.js';
import { loadRecipientKeys } from './adapters/ocicrypt/jwe-key-wrap.js';
import { defaultAuthFile } from './adapters/registry/registry-credentials.js';
import { localHost } from './adapters/host/local-host.js';
import { createLogger } from './adapters/log/pino-logger.js';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { CriuCheckpointEngine } from './adapters/criu/criu-checkpoint-engine.js';
import { CriuForeignImages } from './adapters/criu/criu-foreign-images.js';
import { FOREIGN_DIR } from './domain/layout.js';
import { DockerClient } from './adapters/docker/docker-client.js';
import { DockerContainerRuntime } from './adapters/docker/docker-container-runtime.js';
import { LibpodClient } from './adapters/podman/libpod-client.js';
import { PodmanContainerRuntime } from './adapters/podman/podman-container-runtime.js';
import { ContainerdCtl } from './adapters/docker/containerd-ctl.js';
import { OverlayRootfsChanges } from './adapters/docker/overlay-rootfs-changes.js';
import { FsImageStore } from './adapters/store/fs-image-store.js';
import { openDatabase } from './adapters/store/database.js';
import { lockDataDir, type DataDirLock } from './adapters/store/data-dir-lock.js';
import { SqliteHostJournal } from './adapters/store/sqlite-host-journal.js';
import { DockerHostUndo } from './adapters/docker/docker-host-undo.js';
import { recoverHostState } from './services/host/recover-host-state.js';
import { UnixSidecarConnector } from './adapters/sidecar/unix-sidecar-connector.js';
import { HttpPeerAgent } from './adapters/peer/http-peer-agent.js';
import { ProcInspector } from './adapters/proc/proc-inspector.js';
import { PromMetrics } from './adapters/metrics/prom-metrics.js';
import { loadOrCreateToken } from './adapters/store/token-file.js';
import type { Config } from './config.js';
import { DEADLINES } from './defaults.js';
import { buildApp } from './http/app.js';
import { systemClock } from './services/ports/clock.js';
import { createServices } from './wire-services.js';

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
  // Before recovery and the staging sweep: a second cryo on this directory would undo the first one's work.
  const lock = lockDataDir(config.dataDir);
  try {
    return await serve(config, lock);
  } catch (err) {
    lock.release();
    throw err;
  }
}

async function serve(config: Config, lock: DataDirLock): Promise<Server> {
  const token = config.token ?? (await loadOrCreateToken(config.dataDir));
  const db = openDatabase(path.join(config.dataDir, CATALOG_FILE));
  const store = new FsImageStore(config.dataDir);
  await store.init();
  const log = createLogger(config.logLevel);
  const podman = config.engine === 'podman';
  // Podman's Docker-compatible API serves the life cycle and images; libpod's own, its checkpoints and restores.
  const docker = podman
    ? new DockerClient(config.podmanSocket, config.dockerTimeoutMs, 'podman')
    : new DockerClient(config.dockerSocket, config.dockerTimeoutMs);
  const commands = { ms: config.commandTimeoutMs, setting: DEADLINES.command.setting };
  const journal = new SqliteHostJournal(db);
  const foreign = new CriuForeignImages(path.join(config.dataDir, FOREIGN_DIR));
  const runtime = podman
    ? new PodmanContainerRuntime(
        docker,
        new LibpodClient(config.podmanSocket, config.dockerTimeoutMs),
        journal,
        {
          runtimeStateDir: config.runtimeStateDir,
          foreign,
          log,
        },
      )
    : new DockerContainerRuntime(docker, journal, {
        execRoot: config.dockerExecRoot,
        runc: config.runc,
        runtimeStateDir: config.runtimeStateDir,
        lazyDumpTimeoutMs: config.lazyDumpTimeoutMs,
        log,
        commandDeadline: commands,
        ...(config.containerdSocket ? { containerdSocket: config.containerdSocket } : {}),
      });
  const metrics = new PromMetrics({
    storedBytes: () => services.catalog.list().reduce((sum, c) => sum + c.sizeBytes, 0),
    checkpoints: () => services.catalog.ids().size,
    freeBytes: async () => (await store.space()).freeBytes,
  });
  const services = createServices({
    host: localHost(),
    log,
    metrics,
    runtime,
    journal,
    engine: new CriuCheckpointEngine({ binary: config.criuBinary, postCopyOff: config.postCopy === 'off' }),
    rootfs: new OverlayRootfsChanges(
      docker,
      new ContainerdCtl(config.dockerExecRoot, config.containerdSocket, commands),
      commands,
    ),
    inspector: new ProcInspector(commands),
    foreign,
    db,
    store,
    registries: registryConnector({
      authFile: config.registryAuthFile ?? defaultAuthFile(),
      ...(config.registryCaFile ? { caFile: config.registryCaFile } : {}),
      insecure: config.registryInsecure,
      timeoutMs: config.registryTimeoutMs,
    }),
    encryption: new OcicryptLayerEncryption(
      await loadRecipientKeys(config.registryEncryptionKey, config.registryDecryptionKey),
    ),
    connect: (url, peerToken) => new HttpPeerAgent(url, peerToken, undefined, config.peerTimeoutMs),
    sidecar: new UnixSidecarConnector(),
    sidecarCoordinator: {
      timeoutMs: config.sidecarTimeoutMs,
      minPauseMs: config.sidecarMinPauseMs,
      maxConcurrent: config.sidecarMaxConcurrent,
      tolerableFailures: config.sidecarTolerableFailures,
    },
    clock: systemClock,
    dataDir: config.dataDir,
    maxImportBytes: config.maxImportBytes,
    diskFloor: { minFreeBytes: config.minFreeBytes, minFreePercent: config.minFreePercent },
    scheduleGraceMs: config.scheduleGraceMs,
    migrationRetentionMs: config.migrationRetentionMs,
    migrationSettleTimeoutMs: config.migrationSettleTimeoutMs,
    lazyPagesTimeoutSeconds: config.lazyPagesTimeoutSeconds,
    ...(config.pageServerAddress ? { pageServerAddress: config.pageServerAddress } : {}),
  });
  const { catalog, schedules, migrations } = services;
  const app = await buildApp({
    ...services,
    token,
    logger: log,
    metrics,
    metricsPublic: config.metricsPublic,
    bodyTimeoutMs: config.requestBodyTimeoutMs,
  });

  // What a crash left changed outside the data directory is put back before any request is served.
  const recovery = await recoverHostState({
    journal,
    undo: new DockerHostUndo(docker, (id) => runtime.ensureNotFrozen(id)),
    catalog,
    runtime,
  });
  for (const { entry, error } of recovery.failed)
    app.log.error(
      { intent: entry.intent, error },
      'could not undo what an interrupted operation left; tried again at the next start',
    );
  if (recovery.undone.length > 0)
    app.log.warn(
      { undone: recovery.undone.map((e) => e.intent) },
      'undid what an interrupted operation left',
    );

  // Half-written checkpoints from a crash are never visible; drop them.
  const swept = await store.sweep(catalog.ids());
  if (swept.length > 0) app.log.warn({ swept }, 'removed incomplete checkpoint directories');
  const chains = await services.checkpoints.recoverChains();
  if (chains.length > 0) app.log.warn({ chains }, 'finished what an interrupted chain rebase left');

  try {
    await app.listen({ host: config.listen.host, port: config.listen.port });
    await schedules.start();
    migrations.resumeInterrupted();
    runtime.resumeLazyRestores();
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
      lock.release();
    },
  };
}
