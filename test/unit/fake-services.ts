import path from 'node:path';
import { CriuForeignImages } from '../../src/adapters/criu/criu-foreign-images.js';
import type { Db } from '../../src/adapters/store/database.js';
import { FOREIGN_DIR } from '../../src/domain/layout.js';
import { FsImageStore } from '../../src/adapters/store/fs-image-store.js';
import type { Clock } from '../../src/services/ports/clock.js';
import type { HostJournal } from '../../src/services/ports/host-journal.js';
import type { PeerConnector } from '../../src/services/ports/peer-agent.js';
import { createServices, type ServiceDeps, type Services } from '../../src/wire-services.js';
import { FakeEngine, FakeInspector, FakeRootfs, FakeRuntime, TEST_HOST } from './fakes.js';

/** Every service on fake Docker and CRIU adapters, with the real stores in `dir`. */
export async function fakeServices(
  dir: string,
  db: Db,
  clock: Clock,
  runtime = new FakeRuntime(),
  connect: PeerConnector = () => {
    throw new Error('no peers in unit tests');
  },
  journal?: HostJournal,
  extra: Partial<ServiceDeps> = {},
): Promise<Services & { runtime: FakeRuntime }> {
  runtime.journal = journal;
  const store = new FsImageStore(dir);
  await store.init();
  const services = createServices({
    host: TEST_HOST,
    runtime,
    engine: new FakeEngine(),
    rootfs: new FakeRootfs(),
    inspector: new FakeInspector(),
    foreign: new CriuForeignImages(path.join(dir, FOREIGN_DIR)),
    db,
    store,
    connect,
    clock,
    dataDir: dir,
    maxImportBytes: 1 << 30,
    scheduleGraceMs: 0,
    migrationRetentionMs: 3_600_000,
    migrationSettleRetryMs: [5],
    journal,
    ...extra,
  });
  return { ...services, runtime };
}
