import { Cron } from "croner";
import type { Clock } from "../clock.js";
import { ERRORS, RosterError, coerceError } from "../errors.js";
import { IntervalService } from "../service.js";
import type { ScheduleRecord, Store } from "../store/index.js";
import { FIRE_TIMES_MAX } from "../store/schedules.js";

/** How often the scheduler looks for due schedules and passed approval deadlines, in ms. */
export const SCHEDULER_TICK_MS_DEFAULT = 250;
/** A fire seen later than this after its time counts as missed (the supervisor was down), in ms. */
export const MISSED_GRACE_MS_DEFAULT = 5_000;
/** Most schedules handled per tick. */
const DUE_PER_TICK = 100;

/** How an error names a schedule's expression and zone: a flag (`--cron`, `--tz`) or a field path (`schedules[0].cron`). */
export interface CronFields {
  /** Default "cron". */
  cron?: string;
  /** Default "timezone". */
  timezone?: string;
}

/**
 * A cron expression parsed once: croner (5 fields, or 6 with seconds first; an IANA
 * time zone or the local one). Throws VALIDATION naming the expression or the zone
 * as `fields` says. The zone is checked here because croner only reads it at the
 * first nextRun(), and then fails with an error that names neither.
 */
export function parseCron(expression: string, timezone: string | null | undefined, fields: CronFields = {}): Cron {
  const cronField = fields.cron ?? "cron";
  if (timezone != null) checkTimezone(timezone, fields.timezone ?? "timezone");
  try {
    return new Cron(expression, { paused: true, ...(timezone == null ? {} : { timezone }) });
  } catch (error) {
    const e = coerceError(error);
    throw new RosterError("VALIDATION", `${cronField}: "${expression}"${timezone == null ? "" : ` in ${timezone}`} is not a cron expression croner accepts (${e.message})`, {
      cause: e,
      details: { field: cronField },
    });
  }
}

/**
 * Refuses an expression that is not 5 fields, or 6 with seconds first (docs/humans-and-schedules.md),
 * before croner reads it: croner also takes a 7th field (a year, after which the schedule never
 * fires again), a nickname (`@daily`) and an ISO time (fired once), none of which a schedule
 * promises. Input only: a stored schedule is read by parseCron alone, as it was written.
 */
export function checkCronFields(expression: string, field = "cron"): void {
  const count = expression.trim() === "" ? 0 : expression.trim().split(/\s+/).length;
  if (count === 5 || count === 6) return;
  throw new RosterError(
    "VALIDATION",
    `${field}: "${expression}" has ${count} field${count === 1 ? "" : "s"}; must have 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first`,
    { details: { field } },
  );
}

/** Refuses a zone this Node's Intl does not know (croner converts times with Intl). */
export function checkTimezone(timezone: string, field: string): void {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
  } catch (error) {
    throw new RosterError("VALIDATION", `${field}: "${timezone}" is not an IANA time zone (such as UTC or Europe/Paris)`, { cause: error, details: { field } });
  }
}

/** The first fire time strictly after `after` (epoch ms), or null when the expression never fires again. */
export function nextFireAfter(cron: Cron, after: number): number | null {
  const next = cron.nextRun(new Date(after));
  return next === null ? null : next.getTime();
}

/** Fires of a due schedule at `now`: on time, missed (older than graceMs), and the next one after now. */
export function planFires(
  cron: Cron,
  schedule: Pick<ScheduleRecord, "nextFireAt" | "missed">,
  now: number,
  graceMs: number,
): { fire: number[]; skipped: number[]; next: number | null } {
  const due: number[] = [];
  for (let t: number | null = schedule.nextFireAt; t !== null && t <= now && due.length < 10_000; t = nextFireAfter(cron, t)) due.push(t);
  const onTime = due.filter((t) => now - t <= graceMs);
  const missed = due.filter((t) => now - t > graceMs);
  const fire = schedule.missed === "catch-up-once" && missed.length > 0 ? [missed[missed.length - 1]!, ...onTime] : onTime;
  const skipped = schedule.missed === "catch-up-once" ? missed.slice(0, -1) : missed;
  const latest = due.length === 0 ? now : Math.max(now, due[due.length - 1]!);
  return { fire: fire.slice(-FIRE_TIMES_MAX), skipped, next: nextFireAfter(cron, latest) };
}

export interface SchedulerHost {
  readonly store: Store;
  readonly clock: Clock;
  /** Recorded as who fired (the supervisor's agent id). */
  readonly agentId: string;
  error(where: string, error: Error): void;
  /** Something an operator must act on that is not a failure of this process (a schedule paused for its persona). */
  warn?(where: string, message: string): void;
}

export interface SchedulerOptions {
  /** Default SCHEDULER_TICK_MS_DEFAULT. */
  tickMs?: number;
  /** Default MISSED_GRACE_MS_DEFAULT. */
  missedGraceMs?: number;
}

/**
 * The schedule service: every tickMs it reads the schedules that are due, works
 * out their fire times with croner (policy is code), and takes each fire through
 * store.schedules.fire, a compare-and-set on the schedule's cursor plus an
 * idempotency key per fire, so several supervisors on one database enqueue each
 * fire once. A fire older than missedGraceMs was missed (every supervisor was
 * down): `skip` passes over it, `catch-up-once` runs the latest missed one once.
 * The same tick applies the default outcome of approvals whose deadline passed.
 *
 * A schedule that cannot fire because of what it holds is not retried every tick: one whose
 * persona was retired or removed is paused by the store (the fire's compare-and-set, so one
 * supervisor does it) and said once as a warning; one that fails with another input error
 * (a stored expression or zone croner refuses, a template that no longer validates) is
 * reported once and passed over until the schedule changes (its updatedAt).
 *
 * Modes (IntervalService): stopped → ticking (a tick timer) → stopped. A tick that fails is reported
 * and the next tick tries again; ticks never overlap.
 */
export class Scheduler extends IntervalService {
  readonly name = "scheduler";
  private readonly graceMs: number;
  private readonly crons = new Map<string, { key: string; cron: Cron }>();
  /** Schedules that failed with an input error, by id: the updatedAt of the version that failed. */
  private readonly broken = new Map<string, number>();

  constructor(
    private readonly host: SchedulerHost,
    options: SchedulerOptions = {},
  ) {
    const tickMs = options.tickMs ?? SCHEDULER_TICK_MS_DEFAULT;
    const graceMs = options.missedGraceMs ?? MISSED_GRACE_MS_DEFAULT;
    if (!Number.isInteger(tickMs) || tickMs < 10) throw new RosterError("CONFIG_INVALID", `scheduler.tickMs: must be an integer >= 10, got ${tickMs}`);
    if (!Number.isInteger(graceMs) || graceMs < 0) throw new RosterError("CONFIG_INVALID", `scheduler.missedGraceMs: must be an integer >= 0, got ${graceMs}`);
    super((where, error) => host.error(where, error), tickMs);
    this.graceMs = graceMs;
  }

  /** Starts ticking, with a first pass at once that start() does not wait for. */
  override start(): void {
    if (this.started) return;
    void super.start();
    void this.tick();
  }

  private cronOf(schedule: ScheduleRecord): Cron {
    const key = `${schedule.cron}\u0000${schedule.timezone ?? ""}`;
    const cached = this.crons.get(schedule.id);
    if (cached !== undefined && cached.key === key) return cached.cron;
    const cron = parseCron(schedule.cron, schedule.timezone, { cron: `schedules.${schedule.id}.cron`, timezone: `schedules.${schedule.id}.timezone` });
    this.crons.set(schedule.id, { key, cron });
    return cron;
  }

  /** One pass (tests call it through tick()); a failure of the whole pass is reported as scheduler.tick. */
  protected async run(): Promise<void> {
    const { store, clock } = this.host;
    const due = await store.schedules.due({ now: clock.now(), limit: DUE_PER_TICK });
    for (const schedule of due) {
      if (this.broken.get(schedule.id) === schedule.updatedAt || schedule.nextFireAt === null) continue;
      this.broken.delete(schedule.id);
      try {
        const now = clock.now();
        const plan = planFires(this.cronOf(schedule), schedule, now, this.graceMs);
        // A schedule that will never fire again keeps no next fire (null): never due again, `schedule ls` says so.
        const result = await store.schedules.fire({
          scheduleId: schedule.id,
          expectedNextFireAt: schedule.nextFireAt,
          fireAts: plan.fire,
          skipped: plan.skipped,
          nextFireAt: plan.next,
          by: this.host.agentId,
          now,
        });
        if (result.paused !== undefined) {
          this.host.warn?.(`scheduler.fire(${schedule.id})`, `${result.paused.message}; paused the schedule: fix the persona or the schedule, then \`roster schedule resume ${schedule.id}\``);
        }
      } catch (error) {
        const e = coerceError(error);
        if (e instanceof RosterError && ERRORS[e.code].exit === 2) {
          this.broken.set(schedule.id, schedule.updatedAt);
          this.host.error(`scheduler.fire(${schedule.id})`, new RosterError(e.code, `${e.message}; schedule "${schedule.id}" is passed over until it is changed`, { cause: e, details: e.details, retryable: false }));
        } else this.host.error(`scheduler.fire(${schedule.id})`, e);
      }
    }
    await store.humans.applyDeadlines({ now: clock.now() });
  }
}
