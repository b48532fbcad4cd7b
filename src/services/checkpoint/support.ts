import { CriuUnavailableError, DockerNotExperimentalError } from '../../domain/errors/index.js';
import type { CheckpointEngine } from '../ports/checkpoint-engine.js';
import type { Clock } from '../ports/clock.js';
import type { ContainerRuntime } from '../ports/container-runtime.js';

const SUPPORT_TTL_MS = 5_000;

/** Whether this host can checkpoint now: Docker's experimental mode and CRIU's version, asked again at most every few seconds. */
export class CheckpointSupport {
  private known: { at: number; criuVersion: string } | undefined;

  constructor(
    private readonly runtime: ContainerRuntime,
    private readonly engine: CheckpointEngine,
    private readonly clock: Clock,
  ) {}

  /** CRIU's version, or the error that says why this host cannot checkpoint. */
  async require(): Promise<string> {
    const now = this.clock.now();
    if (this.known && now - this.known.at < SUPPORT_TTL_MS) return this.known.criuVersion;
    const version = await this.runtime.version();
    if (!version.experimental) throw new DockerNotExperimentalError();
    let criuVersion: string;
    try {
      criuVersion = await this.engine.version();
    } catch (err) {
      if (err instanceof CriuUnavailableError) throw err;
      throw new CriuUnavailableError(String(err), { cause: err });
    }
    this.known = { at: now, criuVersion };
    return criuVersion;
  }
}
