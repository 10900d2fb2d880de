import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { waitFor } from './wait.js';
import { killOnExit, trackExit } from './child-processes.js';

/** A Kafka-protocol broker for tests: librdkafka's mock cluster through kcat, or an external one. */
export interface Broker {
  /** Bootstrap addresses (`host:port`); with a mock cluster of N brokers, all N advertised ones. */
  brokers: string[];
  /** PID of the kcat process hosting the mock cluster; undefined for an external broker. */
  pid: number | undefined;
  /** Hangs the broker (SIGSTOP). */
  freeze(): void;
  /** Resumes a frozen broker (SIGCONT). */
  thaw(): void;
  /** Kills the broker for good and waits for the process to exit. */
  stop(): Promise<void>;
}

export interface BrokerOptions {
  /** Number of mock brokers (`test.mock.num.brokers`). */
  brokers?: number;
  /** How long to wait for the mock cluster to listen. */
  startTimeoutMs?: number;
}

const KCAT = 'kcat';
const EXTERNAL_BROKERS_ENV = 'TEST_KAFKA_BROKERS';
const DEFAULT_START_TIMEOUT_MS = 10_000;
// Only the start of kcat's stderr matters (the "Mock cluster enabled" line); cap what we keep.
const MAX_STDERR_CHARS = 64 * 1024;
const MOCK_ANNOUNCEMENT = /Mock cluster enabled[^\n]*/;
const LOOPBACK_ADDRESS = /127\.0\.0\.1:\d+/g;

/**
 * Starts a broker: the one(s) named in `TEST_KAFKA_BROKERS` (comma-separated) when set, otherwise
 * librdkafka's mock cluster hosted by a kcat process (docs/development.md, "The mock broker").
 */
export async function startBroker(options: BrokerOptions = {}): Promise<Broker> {
  const external = process.env[EXTERNAL_BROKERS_ENV]?.trim();
  if (external) return externalBroker(external);

  const { brokers: count = 1, startTimeoutMs = DEFAULT_START_TIMEOUT_MS } = options;
  if (!Number.isInteger(count) || count < 1) {
    throw new Error(`Expected \`brokers\` to be a positive integer (actual: ${String(count)}).`);
  }

  const child = spawn(KCAT, ['-C', '-b', 'dummy:1', '-t', '__warmup', '-X', `test.mock.num.brokers=${count}`, '-q'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  killOnExit(child);

  const { exited, exitDescription, spawnError, stderr } = trackExit(child, MAX_STDERR_CHARS);

  let addresses: string[];
  try {
    addresses = await waitFor(
      () => {
        const failedSpawn = spawnError();
        if (failedSpawn) {
          const code = (failedSpawn as NodeJS.ErrnoException).code;
          throw new Error(code === 'ENOENT' ? 'kcat not found: apt-get install -y kcat' : `kcat failed to start: ${failedSpawn.message}`);
        }
        if (exitDescription() !== undefined) {
          throw new Error(`kcat exited before the mock cluster was up (${exitDescription()}): ${stderr().trim()}`);
        }
        const announcement = MOCK_ANNOUNCEMENT.exec(stderr())?.[0];
        if (!announcement || !announcement.includes('127.0.0.1:')) return undefined;
        const found = announcement.match(LOOPBACK_ADDRESS) ?? [];
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: startTimeoutMs, description: 'the kcat mock cluster to print its addresses' },
    );
    await waitFor(() => Promise.all(addresses.map(canConnect)).then((results) => results.every(Boolean)), {
      timeoutMs: startTimeoutMs,
      description: `the mock cluster to accept connections on ${addresses.join(',')}`,
    });
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw error;
  }

  const pid = child.pid;
  const signal = (name: NodeJS.Signals): void => {
    if (exitDescription() !== undefined) throw new Error(`The mock broker has already exited (${exitDescription()})`);
    child.kill(name);
  };
  return {
    brokers: addresses,
    pid,
    freeze: () => signal('SIGSTOP'),
    thaw: () => signal('SIGCONT'),
    stop: async () => {
      if (exitDescription() === undefined) child.kill('SIGKILL');
      await exited;
    },
  };
}

function externalBroker(list: string): Broker {
  const unsupported = (): never => {
    throw new Error('freeze/thaw is not supported with an external broker');
  };
  return {
    brokers: list.split(',').map((address) => address.trim()).filter((address) => address.length > 0),
    pid: undefined,
    freeze: unsupported,
    thaw: unsupported,
    stop: async () => {},
  };
}

function canConnect(address: string): Promise<boolean> {
  const separator = address.lastIndexOf(':');
  const host = address.slice(0, separator);
  const port = Number(address.slice(separator + 1));
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(false);
    });
  });
}
