import {
  ContainerNotFoundError,
  InvalidCronError,
  ScheduleNotFoundError,
  ScheduleRunInProgressError,
} from '../../domain/errors/index.js';
import { applyRetention, ignoreGone } from './apply-retention.js';
import type { CreateScheduleBody, PatchScheduleBody, Schedule, ScheduleRun } from '../../domain/schedule.js';
import type { Checkpoint } from '../../domain/checkpoint.js';
import { RegistryReferenceSchema } from '../../domain/oci-artifact.js';
import type { RegistryService } from '../registry/registry-service.js';
import type { CheckpointService } from '../checkpoint/checkpoint-service.js';
import { newId } from '../support/ids.js';
import { inBackground } from '../support/background.js';
import { NO_LOGGER, type Logger } from '../ports/logger.js';
import type { Clock } from '../ports/clock.js';
import type { ContainerRuntime } from '../ports/container-runtime.js';
import type { CronParser } from '../ports/cron.js';
import type { Metrics } from '../ports/metrics.js';
import type { ScheduleStore } from '../ports/schedule-store.js';

export interface ScheduleServiceDeps {
  store: ScheduleStore;
  checkpoints: CheckpointService;
  runtime: ContainerRuntime;
  cron: CronParser;
  clock: Clock;
  /** Runs missed while cryo was down are caught up (once) only when missed by at most this long. */
  catchUpGraceMs: number;
  /** How often the timer looks for due schedules. */
  tickMs?: number;
  metrics?: Metrics;
  log?: Logger;
  /** Pushes snapshots of schedules that name a repository, and deletes the tags of those retention prunes. */
  registry?: Pick<RegistryService, 'push' | 'unpush'>;
}

type Trigger = ScheduleRun['trigger'];

/** Cron-scheduled snapshots with grandfather-father-son retention. */
export class ScheduleService {
  private readonly running = new Map<string, Promise<ScheduleRun>>();
  /** The last snapshot queued per container: two schedules of one container take turns instead of colliding. */
  private readonly perContainer = new Map<string, Promise<unknown>>();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;

  constructor(private readonly deps: ScheduleServiceDeps) {}

  async create(body: CreateScheduleBody): Promise<Schedule> {
    const { runtime, clock, store } = this.deps;
    this.requireCron(body.cron, body.timezone);
    const container = await runtime.inspect(body.container);
    if (!container) throw new ContainerNotFoundError(body.container);
    const now = clock.now();
    const schedule: Schedule = {
      id: newId(now),
      container: { id: container.id, name: container.name },
      cron: body.cron.trim(),
      ...(body.timezone ? { timezone: body.timezone } : {}),
      leaveRunning: body.leaveRunning,
      ...(body.application ? { application: body.application } : {}),
      retain: body.retain,
      incremental: body.incremental,
      ...(body.push ? { push: body.push } : {}),
      enabled: body.enabled,
      createdAt: new Date(now).toISOString(),
    };
    schedule.nextRunAt = this.nextRun(schedule, now);
    store.save(schedule);
    return schedule;
  }

  list(): Schedule[] {
    return this.deps.store.list();
  }

  get(id: string): Schedule {
    const schedule = this.deps.store.get(id);
    if (!schedule) throw new ScheduleNotFoundError(id);
    return schedule;
  }

  patch(id: string, body: PatchScheduleBody): Schedule {
    const current = this.get(id);
    const next: Schedule = { ...current };
    if (body.cron !== undefined) next.cron = body.cron.trim();
    if (body.timezone === null) delete next.timezone;
    else if (body.timezone !== undefined) next.timezone = body.timezone;
    if (body.leaveRunning !== undefined) next.leaveRunning = body.leaveRunning;
    if (body.application !== undefined) next.application = body.application;
    if (body.retain !== undefined) next.retain = body.retain;
    if (body.incremental !== undefined) next.incremental = body.incremental;
    if (body.push === null) delete next.push;
    else if (body.push !== undefined) next.push = body.push;
    if (body.enabled !== undefined) next.enabled = body.enabled;
    this.requireCron(next.cron, next.timezone);
    next.nextRunAt = this.nextRun(next, this.deps.clock.now());
    this.deps.store.save(next);
    return next;
  }

  async remove(id: string, deleteCheckpoints: boolean): Promise<void> {
    this.get(id);
    await this.running.get(id)?.catch(() => undefined);
    const ids = this.deps.store.checkpointIds(id);
    this.deps.store.remove(id);
    if (deleteCheckpoints) {
      // Newest first: a chain's levels go before the ones they build on, so none is rebased only to be deleted.
      for (const cp of [...ids].reverse()) await this.deps.checkpoints.remove(cp).catch(ignoreGone);
    }
  }

  runs(id: string): ScheduleRun[] {
    this.get(id);
    return this.deps.store.runs(id);
  }

  /** Takes one snapshot now, outside the cron timetable. */
  async runNow(id: string): Promise<ScheduleRun> {
    const schedule = this.get(id);
    if (this.running.has(id)) throw new ScheduleRunInProgressError(id);
    return this.execute(schedule, 'manual');
  }

  /** Starts the timer, after catching up (once) on what was missed while cryo was down. */
  async start(): Promise<void> {
    for (const s of this.deps.store.list()) {
      const last = this.deps.store.runs(s.id).findLast((r) => r.outcome === 'succeeded' && r.endedAt);
      if (last) this.deps.metrics?.lastScheduledSuccess(s.id, new Date(last.endedAt!));
    }
    await this.catchUp();
    this.timer = setInterval(() => {
      if (this.ticking) return;
      this.ticking = true;
      inBackground(
        this.log,
        'looking for due schedules',
        this.runDue().finally(() => {
          this.ticking = false;
        }),
      );
    }, this.deps.tickMs ?? 250);
    this.timer.unref();
  }

  /** Stops the timer and waits for the runs under way. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.idle();
  }

  async idle(): Promise<void> {
    await Promise.allSettled([...this.running.values()]);
  }

  /** Runs missed while cryo was down: one catch-up run within the grace period, otherwise a skipped run. */
  async catchUp(): Promise<void> {
    const now = this.deps.clock.now();
    for (const schedule of this.deps.store.list()) {
      if (!schedule.enabled || !schedule.nextRunAt) continue;
      const due = Date.parse(schedule.nextRunAt);
      if (due > now) continue;
      schedule.nextRunAt = this.nextRun(schedule, now);
      this.deps.store.save(schedule);
      if (now - due <= this.deps.catchUpGraceMs) {
        this.launch(schedule, 'catch-up');
      } else {
        this.record(schedule, {
          outcome: 'skipped',
          trigger: 'catch-up',
          error: `missed at ${new Date(due).toISOString()} while cryo was down, outside the catch-up grace period of ${this.deps.catchUpGraceMs} ms`,
        });
      }
    }
  }

  /** Starts every schedule that is due at the clock's current time; resolves once they are started. */
  async runDue(): Promise<void> {
    const now = this.deps.clock.now();
    for (const schedule of this.deps.store.list()) {
      if (!schedule.enabled || !schedule.nextRunAt || Date.parse(schedule.nextRunAt) > now) continue;
      schedule.nextRunAt = this.nextRun(schedule, now);
      this.deps.store.save(schedule);
      if (this.running.has(schedule.id)) {
        this.record(schedule, {
          outcome: 'skipped',
          trigger: 'cron',
          error: 'the previous run was still in progress',
        });
        continue;
      }
      if (schedule.paused && !(await this.containerRuns(schedule))) continue;
      this.launch(schedule, 'cron');
    }
  }

  /** A run nobody awaits: whatever it meets ends as a failed run in the catalog, never as a rejection. */
  private launch(schedule: Schedule, trigger: Trigger): void {
    inBackground(this.log, `scheduled run of ${schedule.id}`, this.execute(schedule, trigger));
  }

  private get log(): Logger {
    return this.deps.log ?? NO_LOGGER;
  }

  private execute(schedule: Schedule, trigger: Trigger): Promise<ScheduleRun> {
    const promise = this.snapshot(schedule, trigger).finally(() => this.running.delete(schedule.id));
    this.running.set(schedule.id, promise);
    return promise;
  }

  private async snapshot(schedule: Schedule, trigger: Trigger): Promise<ScheduleRun> {
    const started = this.deps.clock.now();
    const run: ScheduleRun = {
      id: newId(started),
      scheduleId: schedule.id,
      startedAt: new Date(started).toISOString(),
      outcome: 'running',
      trigger,
    };
    try {
      this.deps.store.saveRun(run);
      return await this.takeSnapshot(schedule, run, started);
    } catch (err) {
      // The engine gone, or the catalog failing: the run still ends, recorded with what stopped it.
      this.log.warn({ schedule: schedule.id, err: (err as Error).message }, 'scheduled run failed');
      return this.finish(schedule.id, run, { outcome: 'failed', error: (err as Error).message });
    }
  }

  private async takeSnapshot(schedule: Schedule, run: ScheduleRun, started: number): Promise<ScheduleRun> {
    const { checkpoints, runtime } = this.deps;
    const container =
      (await runtime.inspect(schedule.container.id)) ?? (await runtime.inspect(schedule.container.name));
    if (!container || !container.running || container.paused) {
      const reason = container
        ? `container "${container.name}" is ${container.state}`
        : `container "${schedule.container.name}" was removed`;
      this.update(schedule.id, (s) => ({ ...s, paused: s.paused ?? { reason, since: run.startedAt } }));
      return this.finish(schedule.id, run, {
        outcome: 'skipped',
        error: `${reason}; the schedule is paused until it runs again`,
      });
    }
    this.update(schedule.id, (s) => {
      const resumed: Schedule = { ...s, container: { id: container.id, name: container.name } };
      delete resumed.paused;
      return resumed;
    });
    const checkpoint = await this.inTurn(container.id, () =>
      checkpoints.create(container.id, {
        name: `scheduled-${stamp(started)}-${run.id.slice(-4)}`,
        leaveRunning: schedule.leaveRunning,
        includeVolumes: false,
        application: schedule.application ?? false,
        // Schedules from before chains existed have no say: incremental, as new ones are by default.
        incremental: schedule.application === 'only' ? false : (schedule.incremental ?? true),
      }),
    );
    run.checkpointId = checkpoint.id;
    const current = this.get(schedule.id);
    if (current.push) run.push = await this.pushSnapshot(current.push, checkpoint);
    this.deps.store.saveRun(run);
    const { pruned, retention } = await applyRetention(
      checkpoints,
      current,
      this.deps.store.checkpointIds(schedule.id),
    );
    const unpushed = await this.unpushPruned(schedule.id, pruned);
    const { stats } = checkpoint;
    return this.finish(schedule.id, run, {
      outcome: 'succeeded',
      frozenMs: checkpoint.processImage === false ? 0 : (stats.pausedMs ?? stats.frozenMs ?? stats.dumpMs),
      ...(pruned.length > 0 ? { pruned } : {}),
      ...(unpushed.length > 0 ? { unpushed } : {}),
      retention,
    });
  }

  /** The snapshot to the schedule's repository, its name as the tag; a failed push is recorded, not thrown. */
  private async pushSnapshot(
    repository: string,
    checkpoint: Checkpoint,
  ): Promise<NonNullable<ScheduleRun['push']>> {
    const reference = `${repository}:${checkpoint.name}`;
    try {
      if (!this.deps.registry) throw new Error('this cryo has no registry connector');
      const pushed = await this.deps.registry.push(checkpoint.id, RegistryReferenceSchema.parse(reference));
      return { reference: pushed.reference, digest: pushed.digest };
    } catch (err) {
      this.log.warn(
        { reference, err: (err as Error).message },
        'a scheduled snapshot was taken, but its push failed',
      );
      return { reference, error: (err as Error).message };
    }
  }

  /** Deletes from the registry what the runs of pruned snapshots pushed there. */
  private async unpushPruned(
    scheduleId: string,
    pruned: string[],
  ): Promise<NonNullable<ScheduleRun['unpushed']>> {
    const gone = new Set(pruned);
    const out: NonNullable<ScheduleRun['unpushed']> = [];
    for (const r of this.deps.store.runs(scheduleId)) {
      if (!r.checkpointId || !gone.has(r.checkpointId) || !r.push?.digest) continue;
      const { reference, digest } = r.push;
      try {
        if (!this.deps.registry) throw new Error('this cryo has no registry connector');
        await this.deps.registry.unpush({ ...RegistryReferenceSchema.parse(reference), digest });
        out.push({ reference });
      } catch (err) {
        this.log.warn({ reference, err: (err as Error).message }, "could not delete a pruned snapshot's tag");
        out.push({ reference, error: (err as Error).message });
      }
    }
    return out;
  }

  private inTurn<T>(containerId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.perContainer.get(containerId) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(fn);
    const settled = next.catch(() => undefined);
    this.perContainer.set(containerId, settled);
    void settled.then(() => {
      if (this.perContainer.get(containerId) === settled) this.perContainer.delete(containerId);
    });
    return next;
  }

  /** Whether a paused schedule's container runs again; an engine that cannot say leaves the schedule paused. */
  private async containerRuns(schedule: Schedule): Promise<boolean> {
    const { runtime } = this.deps;
    try {
      const c =
        (await runtime.inspect(schedule.container.id)) ?? (await runtime.inspect(schedule.container.name));
      return Boolean(c?.running && !c.paused);
    } catch (err) {
      this.log.warn(
        { schedule: schedule.id, err: (err as Error).message },
        'cannot tell whether a paused schedule runs again',
      );
      return false;
    }
  }

  private finish(id: string, run: ScheduleRun, result: Partial<ScheduleRun>): ScheduleRun {
    const done: ScheduleRun = { ...run, ...result, endedAt: new Date(this.deps.clock.now()).toISOString() };
    this.deps.store.saveRun(done);
    this.deps.metrics?.scheduledRun(id, done.outcome, new Date(done.endedAt!));
    this.update(id, (s) => ({ ...s, lastRun: done }));
    return done;
  }

  private record(schedule: Schedule, result: Pick<ScheduleRun, 'outcome' | 'trigger' | 'error'>): void {
    const now = new Date(this.deps.clock.now()).toISOString();
    const run: ScheduleRun = {
      id: newId(this.deps.clock.now()),
      scheduleId: schedule.id,
      startedAt: now,
      endedAt: now,
      ...result,
    };
    this.deps.store.saveRun(run);
    this.deps.metrics?.scheduledRun(schedule.id, run.outcome, new Date(now));
    this.update(schedule.id, (s) => ({ ...s, lastRun: run }));
  }

  /** Read-modify-write of the stored schedule (it may have been patched or deleted meanwhile). */
  private update(id: string, fn: (s: Schedule) => Schedule): void {
    const current = this.deps.store.get(id);
    if (current) this.deps.store.save(fn(current));
  }

  private requireCron(expression: string, timezone?: string): void {
    const problem = this.deps.cron.problem(expression, timezone);
    if (problem) throw new InvalidCronError(expression, problem);
  }

  private nextRun(schedule: Schedule, afterMs: number): string | undefined {
    return this.deps.cron.next(schedule.cron, new Date(afterMs), schedule.timezone)?.toISOString();
  }
}

function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace('.', '').replace('Z', '');
}
