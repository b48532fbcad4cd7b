import { DiskSpaceError } from '../../domain/errors/index.js';
import type { DiskSpace, ImageStore } from '../ports/image-store.js';

/** How much of the data directory's file system must stay free, whatever cryo writes. */
export interface DiskFloor {
  minFreeBytes: number;
  /** Of the file system's size. */
  minFreePercent: number;
}

/** Refuses, before anything is frozen or written, what would leave less free space than needed plus the floor. */
export class DiskGuard {
  constructor(
    private readonly store: ImageStore,
    private readonly floor: DiskFloor = { minFreeBytes: 0, minFreePercent: 0 },
  ) {}

  /** The free space now and the floor in bytes. */
  async room(): Promise<DiskSpace & { floorBytes: number }> {
    const space = await this.store.space();
    return { ...space, floorBytes: this.floorBytes(space) };
  }

  /** Throws INSUFFICIENT_SPACE (507) when writing `neededBytes` would go below the floor. */
  async require(what: string, neededBytes: number): Promise<void> {
    requireRoom(await this.room(), what, neededBytes);
  }

  private floorBytes(space: DiskSpace): number {
    const { minFreeBytes, minFreePercent } = this.floor;
    return Math.max(minFreeBytes, Math.ceil((space.totalBytes * minFreePercent) / 100));
  }
}

/** The same check against a room read earlier (where the need is learnt later, as an import's from its manifest). */
export function requireRoom(
  room: DiskSpace & { floorBytes: number },
  what: string,
  neededBytes: number,
): void {
  if (room.freeBytes - neededBytes < room.floorBytes)
    throw new DiskSpaceError(what, neededBytes, room.freeBytes, room.floorBytes);
}
