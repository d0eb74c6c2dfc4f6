import { readdirSync, statSync, watch, type FSWatcher } from "node:fs";
import { join } from "node:path";
import type { Clock } from "../clock.js";
import { coerceError } from "../errors.js";
import type { InvalidPersonaFile } from "../personas/load.js";
import type { Persona } from "../personas/schema.js";
import { IntervalService } from "../service.js";
import type { Store } from "../store/index.js";
import { syncPersonasKeepingLastGood } from "./personas.js";

/** How often the persona files' folder and the personas table are looked at, in ms. */
export const PERSONA_RELOAD_MS_DEFAULT = 2_000;

export interface PersonaReloaderHost {
  readonly store: Store;
  readonly clock: Clock;
  /** The personas to serve now (files first, then database-only ones, retired ones left out). */
  update(personas: Persona[]): void;
  error(where: string, error: Error): void;
}

/**
 * Hot reload of personas for a running supervisor: a persona file added, changed
 * or removed, a persona retired or returned to service, or synced by another
 * process (`roster init`), reaches the supervisor within a tick.
 *
 * Each tick (and soon after a file event in the folder) it compares a signature of
 * the folder (names, sizes, mtimes) and of the personas table (ids, updated_at,
 * retired_at); only when one changed does it sync the files into the database (a
 * write) and hand the result to the supervisor. Each file counts on its own
 * (syncPersonasKeepingLastGood): the files that validate are synced and served
 * whatever the others' state; one that does not is reported (its name and field,
 * once per change of it) and keeps its last good version served, or, new, is not
 * served at all. A folder that cannot be read is reported and nothing changes.
 *
 * Modes (IntervalService): stopped → watching (a timer, a folder watch) → stopped. A
 * check asked for during one runs once more after it, so no change is missed.
 */
export class PersonaReloader extends IntervalService {
  readonly name = "personaReloader";
  private watcher: FSWatcher | null = null;
  private soon: NodeJS.Timeout | null = null;
  private checking = false;
  private again = false;
  private lastFiles = "";
  private lastRows = "";
  private lastError = "";
  /** The files last reported as invalid, each with its stamp and error (reportInvalid). */
  private reported = new Map<string, string>();

  constructor(
    private readonly host: PersonaReloaderHost,
    private readonly dir: string,
    intervalMs = PERSONA_RELOAD_MS_DEFAULT,
  ) {
    super((where, error) => host.error(where, error), intervalMs);
  }

  protected override get where(): string {
    return "personas.reload";
  }

  /**
   * Notes what the supervisor serves now (the signatures), so the first check only reacts to
   * changes since, and starts looking. Reloading is not essential to serving: a failed first
   * look is reported and the timer keeps looking.
   */
  override async start(): Promise<void> {
    if (this.started) return;
    try {
      this.lastFiles = this.filesSignature();
      this.lastRows = await this.rowsSignature();
    } catch (error) {
      this.report(this.where, coerceError(error));
    }
    await super.start();
    try {
      this.watcher = watch(this.dir, { persistent: false }, () => {
        if (this.soon !== null) return;
        // An editor writes a file in several steps: look once things settle.
        this.soon = setTimeout(() => {
          this.soon = null;
          void this.check();
        }, 150);
        this.soon.unref();
      });
      this.watcher.on("error", () => this.watcher?.close());
    } catch {
      // No change notification here (or no folder yet): the timer covers it.
    }
  }

  override async stop(): Promise<void> {
    if (this.soon !== null) clearTimeout(this.soon);
    this.watcher?.close();
    this.soon = null;
    this.watcher = null;
    await super.stop();
  }

  /** A check now; one asked for while another runs follows it. */
  check(): Promise<void> {
    if (this.checking) this.again = true;
    return this.tick();
  }

  protected async run(): Promise<void> {
    this.checking = true;
    try {
      do {
        this.again = false;
        const files = this.filesSignature();
        const rows = await this.rowsSignature();
        if (files === this.lastFiles && rows === this.lastRows) continue;
        try {
          const { personas, invalid } = await syncPersonasKeepingLastGood(this.host.store, this.dir, this.host.clock.now());
          this.lastError = "";
          this.lastFiles = files;
          this.lastRows = await this.rowsSignature();
          this.reportInvalid(invalid);
          this.host.update(personas);
        } catch (error) {
          const e = coerceError(error);
          // The folder itself cannot be read: reported once, not every tick; what is served stays.
          if (e.message !== this.lastError) this.host.error("personas.reload", e);
          this.lastError = e.message;
          this.lastFiles = files;
        }
      } while (this.again && this.started);
    } finally {
      this.checking = false;
      this.again = false;
    }
  }

  /**
   * Each file that does not validate is reported by name once per change of it (its size,
   * mtime or error), not at every sync another file's change causes; a file fixed and
   * broken again is reported again.
   */
  private reportInvalid(invalid: readonly InvalidPersonaFile[]): void {
    const reported = new Map<string, string>();
    for (const { file, error } of invalid) {
      const key = `${this.fileStamp(file)}|${error.message}`;
      if (this.reported.get(file) !== key) this.host.error("personas.reload", error);
      reported.set(file, key);
    }
    this.reported = reported;
  }

  private fileStamp(path: string): string {
    try {
      const stat = statSync(path);
      return `${stat.size}:${stat.mtimeMs}`;
    } catch {
      // Removed since the sync read it: the next look at the folder sees it gone.
      return "gone";
    }
  }

  private filesSignature(): string {
    try {
      return readdirSync(this.dir)
        .filter((name) => name.endsWith(".md"))
        .sort()
        .map((name) => {
          const stat = statSync(join(this.dir, name));
          return `${name}:${stat.size}:${stat.mtimeMs}`;
        })
        .join("|");
    } catch {
      return "";
    }
  }

  private async rowsSignature(): Promise<string> {
    const rows = await this.host.store.personas.list({ includeRetired: true });
    return rows.map((r) => `${r.id}:${r.updatedAt}:${r.retiredAt ?? ""}`).join("|");
  }
}
