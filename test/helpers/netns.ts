import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";

/**
 * Several "hosts" on one machine (issue 19): a Linux bridge in the root network
 * namespace carrying the server's address (x.y.z.1/24), and one network namespace
 * per host joined to it by a veth pair, each with its own address. A process run
 * through `command(host, …)` (`ip netns exec`) reaches the server only over its
 * link, so `cut(host)` (`ip link set <its bridge port> down`) takes that host off
 * the network while its processes keep running, and `restore(host)` brings it back.
 *
 * Needs root and iproute2. Names carry this run's pid and a random tag (several
 * runs at once never share an interface or a namespace); `close()` removes every
 * namespace (which removes its veth pair) and the bridge, and runs on process exit
 * too when the test forgot or crashed past its afterAll.
 */
export interface HostNetwork {
  /** The address the server listens on (the bridge's). */
  serverAddress: string;
  /** The subnet, for pg_hba: "10.a.b.0/24". */
  subnet: string;
  hosts: ReadonlyMap<string, NetHost>;
  /** `ip netns exec <host's namespace> command args…`, as [file, args] for spawn. */
  command(host: string, file: string, args: string[]): [string, string[]];
  /** Takes the host's link down: its packets go nowhere until restore(). */
  cut(host: string): void;
  restore(host: string): void;
  /** Removes the namespaces and the bridge; safe to call twice. */
  close(): void;
}

export interface NetHost {
  name: string;
  namespace: string;
  address: string;
  /** The veth end in the root namespace (a port of the bridge). */
  port: string;
}

function ip(args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** Why hosts cannot be made here (not root, no `ip`, no netns support), or null when they can. */
export function hostNetworkUnavailable(): string | null {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return "network namespaces need root";
  try {
    ip(["-V"]);
  } catch (error) {
    return `iproute2's ip is not usable: ${String(error).slice(0, 200)}`;
  }
  const probe = `rprobe-${process.pid}-${randomBytes(3).toString("hex")}`;
  try {
    ip(["netns", "add", probe]);
    ip(["netns", "del", probe]);
  } catch (error) {
    return `ip netns add failed: ${String((error as { stderr?: string }).stderr ?? error).trim().slice(0, 200)}`;
  }
  return null;
}

const NAMESPACE_PREFIX = "roster-hosts-";

/** Namespaces left by an earlier run of this helper whose process is gone (a SIGKILLed test runner). */
function sweepLeftovers(): void {
  let listed: string;
  try {
    listed = ip(["netns", "list"]);
  } catch {
    return;
  }
  for (const line of listed.split("\n")) {
    const name = line.split(" ")[0] ?? "";
    const m = new RegExp(`^${NAMESPACE_PREFIX}(\\d+)-`).exec(name);
    if (m === null) continue;
    try {
      process.kill(Number(m[1]), 0);
      continue; // its runner is alive
    } catch {
      // gone: remove it
    }
    try {
      ip(["netns", "del", name]);
    } catch {
      // another sweeper got it first
    }
  }
}

/**
 * Makes the bridge and one namespace per name. Throws (after removing what it made)
 * when a step fails.
 */
export function createHostNetwork(names: readonly string[]): HostNetwork {
  if (names.length === 0 || names.length > 200) throw new Error(`createHostNetwork: 1 to 200 hosts, got ${names.length}`);
  sweepLeftovers();
  const tag = randomBytes(2).toString("hex");
  // A 10.1xx.y.0/24 no address of the root namespace is in (the benchmark's hosts use 10.2xx).
  const used = ip(["-o", "-4", "addr", "show"]);
  let a = 0;
  let b = 0;
  for (let tries = 0; ; tries++) {
    a = 150 + (randomBytes(1)[0]! % 50);
    b = randomBytes(1)[0]!;
    if (!used.includes(` 10.${a}.${b}.`)) break;
    if (tries > 100) throw new Error("createHostNetwork: no free 10.x.y.0/24 subnet");
  }
  const subnet = `10.${a}.${b}.0/24`;
  const serverAddress = `10.${a}.${b}.1`;
  // Interface names are at most 15 characters: rh<tag>br, rh<tag>v<i>, rh<tag>p<i>.
  const bridge = `rh${tag}br`;
  const hosts = new Map<string, NetHost>();
  let closed = false;
  const made: { bridge: boolean; namespaces: string[] } = { bridge: false, namespaces: [] };
  const close = () => {
    if (closed) return;
    closed = true;
    process.removeListener("exit", close);
    for (const ns of made.namespaces) {
      try {
        ip(["netns", "del", ns]); // takes its veth end, and so the pair, with it
      } catch {
        // already gone
      }
    }
    for (const host of hosts.values()) {
      try {
        ip(["link", "del", host.port]);
      } catch {
        // went with its namespace
      }
    }
    if (made.bridge) {
      try {
        ip(["link", "del", bridge]);
      } catch {
        // already gone
      }
    }
  };
  process.once("exit", close);
  try {
    ip(["link", "add", "name", bridge, "type", "bridge"]);
    made.bridge = true;
    ip(["addr", "add", `${serverAddress}/24`, "dev", bridge]);
    ip(["link", "set", bridge, "up"]);
    names.forEach((name, i) => {
      const namespace = `${NAMESPACE_PREFIX}${process.pid}-${tag}-${name}`;
      const port = `rh${tag}v${i}`;
      const peer = `rh${tag}p${i}`;
      const address = `10.${a}.${b}.${10 + i}`;
      ip(["netns", "add", namespace]);
      made.namespaces.push(namespace);
      ip(["link", "add", port, "type", "veth", "peer", "name", peer]);
      hosts.set(name, { name, namespace, address, port });
      ip(["link", "set", peer, "netns", namespace]);
      ip(["link", "set", port, "master", bridge]);
      ip(["link", "set", port, "up"]);
      ip(["-n", namespace, "addr", "add", `${address}/24`, "dev", peer]);
      ip(["-n", namespace, "link", "set", peer, "up"]);
      ip(["-n", namespace, "link", "set", "lo", "up"]);
    });
  } catch (error) {
    close();
    throw new Error(`createHostNetwork: ${String((error as { stderr?: string }).stderr ?? error).trim()}`, { cause: error });
  }
  const host = (name: string): NetHost => {
    const h = hosts.get(name);
    if (h === undefined) throw new Error(`no host ${JSON.stringify(name)} (hosts: ${[...hosts.keys()].join(", ")})`);
    return h;
  };
  return {
    serverAddress,
    subnet,
    hosts,
    command: (name, file, args) => ["ip", ["netns", "exec", host(name).namespace, file, ...args]],
    cut: (name) => void ip(["link", "set", host(name).port, "down"]),
    restore: (name) => void ip(["link", "set", host(name).port, "up"]),
    close,
  };
}
