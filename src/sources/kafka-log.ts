/** kafkajs log lines into the agent's pino logger, one level quieter: kafkajs' info is chatty. */
import { logLevel } from 'kafkajs';
import type { logCreator } from 'kafkajs';
import type { Logger } from '../log.js';

export function kafkaLogCreator(logger: Logger): logCreator {
  const kafkaLogger = logger.child({ stage: 'kafkajs' });
  return () => ({ level, log }) => {
    const { message, ...fields } = log;
    // Broker addresses and error texts only; kafkajs never logs SASL passwords.
    delete (fields as Record<string, unknown>).timestamp;
    delete (fields as Record<string, unknown>).logger;
    switch (level) {
      case logLevel.ERROR:
        kafkaLogger.error(fields, message);
        break;
      case logLevel.WARN:
        kafkaLogger.warn(fields, message);
        break;
      case logLevel.INFO:
        kafkaLogger.debug(fields, message);
        break;
      default:
        kafkaLogger.trace(fields, message);
    }
  };
}

/** The kafkajs level matching the agent's: everything at debug, errors and warnings otherwise. */
export function kafkaLogLevel(agentLevel: string): logLevel {
  if (agentLevel === 'trace' || agentLevel === 'debug') return logLevel.DEBUG;
  if (agentLevel === 'silent' || agentLevel === 'fatal') return logLevel.NOTHING;
  return logLevel.WARN;
}
