import pg from "pg";
import type { StoreEventBus } from "../events.js";
import { PG_CONNECT_TIMEOUT_MS, translatePgError } from "./connection.js";

/** The listening connection is asked `SELECT 1` this often, in ms (a link cut silently is found within this and the timeout). */
export const LISTEN_PROBE_MS = 10_000;
/** A probe unanswered this long counts as the listening connection lost, in ms. */
export const LISTEN_PROBE_TIMEOUT_MS = 5_000;

/**
 * LISTEN/NOTIFY wake-ups (docs/postgres.md, "wake-ups"): every transaction that readies work,
 * ends a lease or cancels a task NOTIFYs the schema's channel (PgTransactions), and this one
 * connection of the store LISTENs on it while anyone watches, so a supervisor on another host
 * hears of an enqueue as it commits. A hint (the store's own writes notify it too).
 *
 * Modes: idle (no watcher) → connecting → listening (probed every LISTEN_PROBE_MS) → lost
 * (reconnecting with backoff, store:watch-unavailable said once) → connecting …; the last
 * watcher gone, or close(): idle. Every watcher is called at each notification and once each
 * time LISTEN is in force again, for what went unheard before it; `takeNotified()` says
 * whether either happened since it was last asked.
 */
export class PgListener {
  private readonly watchers = new Set<() => void>();
  private notified = false;
  private client: pg.Client | null = null;
  private relisten: NodeJS.Timeout | null = null;
  private probe: NodeJS.Timeout | null = null;
  private closed = false;
  /** LISTEN is in force and its last probe was answered. */
  listening = false;

  constructor(
    private readonly url: string,
    private readonly channel: string,
    private readonly events: StoreEventBus,
  ) {}

  watch(onChange: () => void): () => void {
    if (this.closed) return () => {};
    this.watchers.add(onChange);
    if (this.client === null) void this.listen(0);
    return () => {
      this.watchers.delete(onChange);
      if (this.watchers.size === 0) this.stop();
    };
  }

  /** True once after a notification, or after LISTEN came into force (a yes for what went unheard). */
  takeNotified(): boolean {
    const was = this.notified;
    this.notified = false;
    return was;
  }

  close(): void {
    this.closed = true;
    this.watchers.clear();
    this.stop();
  }

  private tell(): void {
    this.notified = true;
    for (const watcher of [...this.watchers]) watcher();
  }

  private async listen(failures: number): Promise<void> {
    if (this.closed || this.watchers.size === 0) return;
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS, keepAlive: true });
    this.client = client;
    const retry = (error: unknown) => {
      if (this.client !== client) return;
      this.client = null;
      this.stopProbing();
      end(client);
      // Said once per loss, not at every reconnect attempt (those back off to 5 s while the database is unreachable).
      if (failures === 0) this.events.emit("store:watch-unavailable", { reason: translatePgError(error, "listening for changes", this.url).message });
      if (this.closed || this.watchers.size === 0) return;
      this.relisten = setTimeout(() => void this.listen(failures + 1), Math.min(5_000, 100 * 2 ** failures));
      this.relisten.unref();
    };
    client.on("error", retry);
    client.on("notification", (message: pg.Notification) => {
      // roster_room_freed's NOTIFY (migrations/postgres/0009) names the personas whose leases a settle
      // ended: their claimants claim again, as SQLite's claim:reopened says. Not a write to look for:
      // a busy supervisor's settles send one nearly every batch, and each look re-read every lease held.
      if (message.payload !== undefined && message.payload !== "") {
        this.events.emit("claim:reopened", { personas: message.payload.split(" "), reason: "room" });
        return;
      }
      this.tell();
    });
    try {
      await client.connect();
      await client.query(`LISTEN "${this.channel.replaceAll('"', '""')}"`);
    } catch (error) {
      retry(error);
      return;
    }
    if (this.client !== client) return void client.end().catch(() => {});
    this.listening = true;
    // A link cut without a reset leaves the socket open and silent for as long as TCP keeps trying: a
    // listener that hears nothing would look the same as a quiet database. So it is asked a trivial
    // statement now and then, and one unanswered in time counts as the connection lost.
    this.probe = setInterval(() => {
      let answered = false;
      const late = setTimeout(() => {
        if (!answered) retry(new Error(`the listening connection did not answer a probe within ${LISTEN_PROBE_TIMEOUT_MS} ms`));
      }, LISTEN_PROBE_TIMEOUT_MS);
      late.unref();
      const settle = () => {
        answered = true;
        clearTimeout(late);
      };
      client.query("SELECT 1").then(settle, (error: unknown) => {
        settle();
        retry(error);
      });
    }, LISTEN_PROBE_MS);
    this.probe.unref();
    // Notifications sent before this connection listened went unheard (a reconnect's outage, or the moments
    // between the watch's start and its LISTEN).
    this.tell();
  }

  private stopProbing(): void {
    this.listening = false;
    if (this.probe !== null) clearInterval(this.probe);
    this.probe = null;
  }

  private stop(): void {
    this.stopProbing();
    if (this.relisten !== null) clearTimeout(this.relisten);
    this.relisten = null;
    const client = this.client;
    this.client = null;
    if (client !== null) end(client);
  }
}

/** Ends a connection that may still emit: an error nobody listens for would end the process. */
function end(client: pg.Client): void {
  client.removeAllListeners();
  client.on("error", () => {});
  void client.end().catch(() => {});
}
